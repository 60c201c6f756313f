/* test_file.c — vg_file: a regular file read whole (NULs kept, the cap exact), everything else refused in one
 * line without reading a byte or waiting (FIFO, /dev/zero, directory, socket; a symlink inside a directory vigil
 * owns is never followed); the one atomic writer (replaces, durable or not, never follows a symlink, leaves no
 * temp file, fails cleanly); the one key-file format; the JSON text check every parser runs first (issue 17,
 * items 10, 11, 13 and 18). A regression to a blocking open would hang here: ctest's 60 s end it as a failure. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "vg_config.h"
#include "vg_file.h"

static char root[64];

static const char *path_in(const char *name) {
    static char paths[4][256];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", root, name);
    return p;
}

static void write_bytes(const char *name, const char *data, size_t len) {
    FILE *f = fopen(path_in(name), "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

static void test_regular_files(void) {
    char *text, err[200];
    size_t len;
    write_bytes("nul.txt", "a\0b", 3);
    CHECK_INT(vg_file_read(path_in("nul.txt"), 100, &text, &len, err, sizeof err), VG_FILE_OK);
    CHECK(len == 3 && memcmp(text, "a\0b", 4) == 0); /* NULs kept, and one after the text */
    free(text);
    char hundred[101];
    memset(hundred, 'x', sizeof hundred);
    write_bytes("100.txt", hundred, 100);
    write_bytes("101.txt", hundred, 101);
    write_bytes("empty.txt", "", 0);
    CHECK_INT(vg_file_read(path_in("100.txt"), 100, &text, &len, err, sizeof err), VG_FILE_OK);
    CHECK_INT(len, 100);
    free(text);
    CHECK_INT(vg_file_read(path_in("101.txt"), 100, &text, &len, err, sizeof err), VG_FILE_TOO_LARGE);
    CHECK_STR(err, "is larger than 100 bytes");
    CHECK(text == NULL);
    CHECK_INT(vg_file_read(path_in("101.txt"), 64, &text, &len, err, sizeof err), VG_FILE_TOO_LARGE);
    CHECK_STR(err, "is larger than 64 bytes");
    CHECK_INT(vg_file_read(path_in("empty.txt"), 100, &text, &len, err, sizeof err), VG_FILE_OK);
    CHECK(len == 0 && text && text[0] == 0);
    free(text);
    CHECK_INT(vg_file_read(path_in("none.txt"), 100, &text, &len, err, sizeof err), VG_FILE_MISSING);
    CHECK_STR(err, "No such file or directory");
    char cap[32];
    CHECK_STR(vg_file_size_text(VG_FILE_CONFIG_MAX, cap, sizeof cap), "4 MiB");
    CHECK_STR(vg_file_size_text(VG_FILE_KEY_MAX, cap, sizeof cap), "64 KiB");
}

/* Item 10 and 11: /dev/zero and a FIFO were read forever (or waited for a writer); now refused at once. */
static void test_not_regular(void) {
    char *text, err[200];
    size_t len;
    CHECK_INT(vg_file_read("/dev/zero", VG_FILE_CONFIG_MAX, &text, &len, err, sizeof err), VG_FILE_NOT_REGULAR);
    CHECK_STR(err, "is a character device, not a regular file");
    CHECK_INT(mkfifo(path_in("fifo"), 0600), 0);
    CHECK_INT(vg_file_read(path_in("fifo"), 100, &text, &len, err, sizeof err), VG_FILE_NOT_REGULAR);
    CHECK_STR(err, "is a FIFO, not a regular file");
    CHECK_INT(vg_file_read(root, 100, &text, &len, err, sizeof err), VG_FILE_NOT_REGULAR);
    CHECK_STR(err, "is a directory, not a regular file");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_in("sock"));
    CHECK_INT(bind(s, (struct sockaddr *)&addr, sizeof addr), 0);
    CHECK_INT(vg_file_read(path_in("sock"), 100, &text, &len, err, sizeof err), VG_FILE_NOT_REGULAR);
    CHECK_STR(err, "is a socket, not a regular file");
    close(s);
}

/* Item 13: inside a directory vigil owns a symlink is never followed; a path the operator gives may be one
 * (a packaged /etc link, a Kubernetes secret), and what it names must still be a regular file. */
static void test_symlinks(void) {
    char *text, err[200];
    size_t len;
    write_bytes("target.txt", "secret", 6);
    CHECK_INT(symlink(path_in("target.txt"), path_in("link.txt")), 0);
    CHECK_INT(symlink(path_in("fifo"), path_in("link-to-fifo")), 0);
    int dirfd = open(root, O_RDONLY | O_DIRECTORY);
    CHECK_INT(vg_file_read_at(dirfd, "link.txt", 100, &text, &len, err, sizeof err), VG_FILE_NOT_REGULAR);
    CHECK_STR(err, "is a symlink (not followed)");
    CHECK(text == NULL);
    char why[100];
    CHECK_STR(vg_file_irregular_at(dirfd, "link.txt", why, sizeof why), "is a symlink (not followed)");
    CHECK_STR(vg_file_irregular_at(dirfd, "fifo", why, sizeof why), "is a FIFO, not a regular file");
    CHECK(vg_file_irregular_at(dirfd, "target.txt", why, sizeof why) == NULL);
    CHECK_INT(vg_file_read_at(dirfd, "target.txt", 100, &text, &len, err, sizeof err), VG_FILE_OK);
    CHECK(len == 6 && strcmp(text, "secret") == 0);
    free(text);
    close(dirfd);
    CHECK_INT(vg_file_read(path_in("link.txt"), 100, &text, &len, err, sizeof err), VG_FILE_OK);
    free(text);
    CHECK_INT(vg_file_read(path_in("link-to-fifo"), 100, &text, &len, err, sizeof err), VG_FILE_NOT_REGULAR);
    CHECK_STR(err, "is a FIFO, not a regular file");
}

static void check_content(const char *name, const char *want) {
    char *text, err[200];
    size_t len;
    CHECK_INT(vg_file_read(path_in(name), 1024, &text, &len, err, sizeof err), VG_FILE_OK);
    CHECK(text && len == strlen(want) && memcmp(text, want, len) == 0);
    free(text);
}

static void test_replace(void) {
    mkdir(path_in("w"), 0700);
    int dirfd = open(path_in("w"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(dirfd >= 0);
    CHECK_INT(vg_file_replace_at(dirfd, "a.ver", "first", 5, 0600, 1), 0); /* a new file, durably */
    check_content("w/a.ver", "first");
    struct stat st;
    CHECK(stat(path_in("w/a.ver"), &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK_INT(vg_file_replace_at(dirfd, "a.ver", "second, longer", 14, 0600, 0), 0); /* replaced, no fsync */
    check_content("w/a.ver", "second, longer");
    CHECK_INT(vg_file_replace_at(dirfd, "a.ver", "", 0, 0600, 1), 0);
    check_content("w/a.ver", "");
    CHECK(access(path_in("w/.a.ver.tmp"), F_OK) < 0); /* no temp file left */
    /* a symlink where the temp file goes is not followed: the write fails, the target is untouched */
    write_bytes("target", "keep", 4);
    CHECK_INT(symlink(path_in("target"), path_in("w/.b.ver.tmp")), 0);
    errno = 0;
    CHECK_INT(vg_file_replace_at(dirfd, "b.ver", "evil", 4, 0600, 1), -1);
    CHECK(errno == ELOOP);
    check_content("target", "keep");
    CHECK(access(path_in("w/b.ver"), F_OK) < 0);
    /* renaming over a directory fails: -1 with errno, the temp file removed */
    mkdir(path_in("w/c.ver"), 0700);
    CHECK_INT(vg_file_replace_at(dirfd, "c.ver", "x", 1, 0600, 1), -1);
    CHECK(errno == EISDIR);
    CHECK(access(path_in("w/.c.ver.tmp"), F_OK) < 0);
    CHECK_INT(vg_file_replace_at(-1, "d.ver", "x", 1, 0600, 1), -1); /* no directory */
    CHECK(errno == EBADF);
    close(dirfd);
}

static void check_key(const char *text, const char *want) {
    char key[64], err[200] = "";
    int rc = vg_key_parse(text, strlen(text), key, sizeof key, err, sizeof err);
    CHECK_INT(rc, 0);
    if (rc == 0) CHECK_STR(key, want);
    else fprintf(stderr, "  for %s: %s\n", text, err);
}

static void check_no_key(const char *text, size_t len, const char *why) {
    char key[64], err[200] = "";
    CHECK_INT(vg_key_parse(text, len, key, sizeof key, err, sizeof err), -1);
    CHECK_STR(err, why);
}

/* One format for central.api_key_file and node.api_key_file (docs/config.md, "Key files"). */
static void test_key_format(void) {
    check_key("API_KEY=abc123\n", "abc123");
    check_key("# Central\nCENTRAL_URL=http://x\n  API_KEY = \"s3cr et\"  # quoted\n", "s3cr et");
    check_key("export API_KEY='single'\n", "single");
    check_key("API_KEY=bare # comment\n", "bare");
    check_key("API_KEY=old\nAPI_KEY=new\n", "new");
    check_key("s3cret-key\n", "s3cret-key");                       /* the key alone */
    check_key("\n  \n  node key with spaces \r\nsecond line\n", "node key with spaces");
    check_key("# the node key\nq3Zk9Rt7Y2==\n", "q3Zk9Rt7Y2==");      /* base64 padding is not an assignment */
    check_key("OTHER=1\nthe-key\n", "the-key");
    check_key("the-key\nAPI_KEY=wins\n", "wins");
    check_no_key("CENTRAL=1\n# API_KEY=x\n", 22, "no key in it (no API_KEY= line, and no line with the key alone)");
    check_no_key("API_KEYS=x\n", 11, "no key in it (no API_KEY= line, and no line with the key alone)");
    check_no_key(" \n\n# only a comment\n", 20, "no key in it (no API_KEY= line, and no line with the key alone)");
    check_no_key("API_KEY=\n", 9, "the key is empty or has control characters");
    check_no_key("API_KEY=\"\"\n", 11, "the key is empty or has control characters");
    check_no_key("API_KEY=a\0b\n", 12, "the key is empty or has control characters"); /* not cut at the NUL */
    check_no_key("key\0tail\n", 9, "the key is empty or has control characters");
    char key[8], err[200];
    CHECK_INT(vg_key_parse("0123456789abcdef", 16, key, sizeof key, err, sizeof err), -1);
    CHECK_STR(err, "the key is longer than 7 bytes");

    /* Item 11: /dev/zero or a FIFO as the key file ran forever with SIGTERM blocked */
    char big[64];
    CHECK_INT(vg_key_file_read("/dev/zero", big, sizeof big, err, sizeof err), -1);
    CHECK_STR(err, "/dev/zero: is a character device, not a regular file");
    CHECK_INT(vg_key_file_read(path_in("fifo"), big, sizeof big, err, sizeof err), -1);
    CHECK(strstr(err, "fifo: is a FIFO, not a regular file") != NULL);
    write_bytes("node.key", "API_KEY=0123456789abcdef\n", 25);
    CHECK_INT(vg_key_file_read(path_in("node.key"), key, sizeof key, err, sizeof err), -1);
    CHECK(strstr(err, "node.key: the key is longer than 7 bytes") && !strstr(err, "0123"));
    CHECK_INT(vg_key_file_read(path_in("node.key"), big, sizeof big, err, sizeof err), 0);
    CHECK_STR(big, "0123456789abcdef");
}

#define JSON(literal) literal, sizeof literal - 1 /* the text and its length, NULs included */

static void check_json(const char *text, size_t len, const char *want) {
    char err[200] = "";
    int rc = vg_json_check_text(text, len, err, sizeof err);
    if (!want) {
        CHECK_INT(rc, 0);
        if (rc) fprintf(stderr, "  refused %s: %s\n", text, err);
        return;
    }
    CHECK_INT(rc, -1);
    CHECK_STR(err, want);
}

/* Item 18: what cJSON would cut, misread or refuse as "not valid JSON" without saying why. */
static void test_json_text(void) {
    check_json(JSON("{\"a\":\"\\ud83d\\ude00 \\u00e9 \xc3\xa9 \xf0\x9f\x98\x80\"}"), NULL);
    check_json(JSON("{\"a\":\"x\\u0000y\"}"), "\\u0000 in a string (a string cannot hold a NUL) near line 1, column 8");
    check_json(JSON("{\"a\":\"\\udfff\"}"), "\\udfff is the second half of a UTF-16 surrogate pair without its first half "
                                       "near line 1, column 7");
    check_json(JSON("{\"a\":\n\"\\ud83d x\"}"), "\\ud83d is the first half of a UTF-16 surrogate pair without its second "
                                           "half near line 2, column 2");
    check_json(JSON("{\"a\":\"\\\\u0000\"}"), NULL); /* an escaped backslash, then text */
    check_json(JSON("{\"a\":\"\xff\"}"), "not UTF-8 near line 1, column 7");
    check_json(JSON("{\"a\":\"\xc0\xaf\"}"), "not UTF-8 near line 1, column 7"); /* overlong */
    check_json(JSON("{\"a\":\"\xed\xa0\x80\"}"), "not UTF-8 near line 1, column 7"); /* a surrogate in UTF-8 */
    check_json(JSON("{\"a\":1}\0"), "a NUL byte near line 1, column 8");
    char deep[2100];
    for (int i = 0; i < 1000; i++) deep[i] = '[', deep[1000 + i] = ']';
    check_json(deep, 2000, NULL); /* cJSON's own limit is taken exactly */
    deep[1000] = '[';
    check_json(deep, 1001, "nested deeper than 1000 levels near line 1, column 1001");
    char err[200];
    deep[1000] = ']';
    cJSON *json = vg_json_parse(deep, 2000, err, sizeof err);
    CHECK(json != NULL);
    cJSON_Delete(json);
    CHECK(vg_json_parse("{\"a\":1} x", 9, err, sizeof err) == NULL);
    CHECK_STR(err, "not valid JSON near line 1, column 9");
    json = vg_json_parse("{\"a\":1} \n", 9, err, sizeof err);
    CHECK(json != NULL);
    cJSON_Delete(json);
}

/* vg_file_make_dirs: parents made with the mode, an existing directory taken, anything else one line naming it. */
static void test_make_dirs(void) {
    char err[512], want[512];
    struct stat st;
    CHECK_INT(vg_file_make_dirs(path_in("md/a/b/"), 0700, err, sizeof err), 0);
    CHECK(stat(path_in("md/a"), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
    CHECK(stat(path_in("md/a/b"), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
    CHECK_INT(vg_file_make_dirs(path_in("md/a/b"), 0700, err, sizeof err), 0); /* already there */
    write_bytes("md/file", "x", 1);
    CHECK_INT(vg_file_make_dirs(path_in("md/file"), 0700, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: not a directory", path_in("md/file"));
    CHECK_STR(err, want);
    CHECK_INT(vg_file_make_dirs(path_in("md/file/c/d"), 0700, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s: Not a directory", path_in("md/file/c"));
    CHECK_STR(err, want);
    CHECK_INT(vg_file_make_dirs("", 0700, err, sizeof err), -1);
    CHECK_STR(err, "'': an empty directory name");
    if (geteuid() != 0) { /* root writes anywhere */
        mkdir(path_in("md/ro"), 0500);
        CHECK_INT(vg_file_make_dirs(path_in("md/ro"), 0700, err, sizeof err), -1);
        snprintf(want, sizeof want, "%s: Permission denied", path_in("md/ro"));
        CHECK_STR(err, want);
        CHECK_INT(vg_file_make_dirs(path_in("md/ro/x"), 0700, err, sizeof err), -1);
        snprintf(want, sizeof want, "%s: Permission denied", path_in("md/ro/x"));
        CHECK_STR(err, want);
        chmod(path_in("md/ro"), 0700);
    }
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/vigil-test-file-XXXXXX");
    if (!mkdtemp(root)) return 2;
    test_regular_files();
    test_not_regular();
    test_symlinks();
    test_replace();
    test_make_dirs();
    test_key_format();
    test_json_text();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (check_failed == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return CHECK_DONE();
}
