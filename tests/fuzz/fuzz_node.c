/* fuzz_node.c — libFuzzer harness of the node API's query parameters (updated_at_gt, poll_timeout, limit of
 * GET /vision/api/v3/episodes): the input is the query as the node reads it, "name=value&..." with any bytes
 * in names and values. Each input is percent-encoded (but for its '=' and '&') into a real request to a node
 * started once on 127.0.0.1 (vg_node_start, libmicrohttpd decodes it back) over a store of three episodes
 * whose long polls do not wait (vg_store_end_queries). Promises checked: every request is answered, 200 with
 * the episodes or 400 naming the parameter at fault, as valid JSON; never another status. */
#include "fuzz.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "vg_log.h"
#include "vg_node.h"

#define FUZZ_MAX_QUERY 4096   /* longer inputs are skipped: libmicrohttpd refuses long URLs (414) itself */
#define FUZZ_ANSWER_WAIT_S 60 /* tests/README.md: HANG_S, a bound that only ends a hang */
#define FUZZ_EPISODES 3

static vg_store *store;
static vg_node *node;

static void stop_node(void) {
    vg_node_stop(node);
    vg_store_close(store);
}

static void put(uint64_t id, int64_t updated_at) {
    char body[200];
    snprintf(body, sizeof body, "{\"episode_id\":%llu,\"media\":\"cam\",\"opened_at\":1,\"updated_at\":%lld}",
             (unsigned long long)id, (long long)updated_at);
    vg_version v = {.episode_id = id, .media = "cam", .opened_at = 1, .updated_at = updated_at, .is_first = 1,
                    .body = body, .body_len = strlen(body)};
    FUZZ_CHECK(vg_sink_put(vg_store_sink(store), &v) == 0, "cannot store episode %llu", (unsigned long long)id);
}

static void start_node(void) {
    char err[512] = "", dir[4200];
    vg_log_set_level(VG_LOG_ERROR);
    snprintf(dir, sizeof dir, "%s/episodes", fuzz_scratch_dir());
    store = vg_store_open(dir, 0, err, sizeof err);
    FUZZ_CHECK(store != NULL, "store: %s", err);
    put(1, 1000), put(2, 2000), put(3, 2000);
    vg_store_end_queries(store); /* a poll_timeout answers at once instead of holding every input for it */
    vg_node_options o = {.listen = "127.0.0.1:0", .store = store};
    node = vg_node_start(&o, err, sizeof err);
    FUZZ_CHECK(node != NULL, "node: %s", err);
    atexit(stop_node);
}

/* GET .../episodes?QUERY with every byte but [A-Za-z0-9=&._~-] as %XX, so the node sees exactly data. */
static char *request_for(const uint8_t *data, size_t size) {
    static const char head[] = "GET " VG_NODE_API "/episodes?";
    static const char tail[] = " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char *req = malloc(sizeof head + size * 3 + sizeof tail), *p = req;
    p += sprintf(p, "%s", head);
    for (size_t i = 0; i < size; i++) {
        int c = data[i];
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    (c && strchr("=&._~-", c));
        if (plain) *p++ = (char)c;
        else p += sprintf(p, "%%%02X", c);
    }
    sprintf(p, "%s", tail);
    return req;
}

/* The whole answer (the node closes the connection after it); NUL-terminated. */
static char *exchange(const char *req, size_t *len) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)vg_node_port(node))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval wait = {.tv_sec = FUZZ_ANSWER_WAIT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    FUZZ_CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0, "cannot connect to the node");
    size_t want = strlen(req);
    FUZZ_CHECK(send(fd, req, want, MSG_NOSIGNAL) == (ssize_t)want, "cannot send the request");
    size_t cap = 4096;
    char *answer = malloc(cap);
    *len = 0;
    for (ssize_t n; (n = recv(fd, answer + *len, cap - *len - 1, 0)) != 0; *len += (size_t)n) {
        FUZZ_CHECK(n > 0, "no answer within %d s", FUZZ_ANSWER_WAIT_S);
        if (cap - *len - 1 < 1024) answer = realloc(answer, cap *= 2);
    }
    close(fd);
    answer[*len] = 0;
    return answer;
}

static void check_episodes(const cJSON *doc) {
    const cJSON *episodes = cJSON_GetObjectItemCaseSensitive(doc, "episodes");
    FUZZ_CHECK(cJSON_IsArray(episodes) && cJSON_GetArraySize(episodes) <= FUZZ_EPISODES, "200 without the episodes");
}

static void check_refusal(const cJSON *doc) {
    const cJSON *error = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "errors"), 0);
    const cJSON *source = cJSON_GetObjectItemCaseSensitive(error, "source");
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(source, "parameter"));
    FUZZ_CHECK(name && (!strcmp(name, "updated_at_gt") || !strcmp(name, "poll_timeout") || !strcmp(name, "limit")),
               "400 naming no parameter of the query");
}

static void check_answer(const char *answer) {
    int status = 0;
    FUZZ_CHECK(sscanf(answer, "HTTP/1.%*d %d", &status) == 1, "no status line: %.200s", answer);
    const char *body = strstr(answer, "\r\n\r\n");
    int is_json = body && strstr(answer, "Content-Type: application/json") && strstr(answer, "Content-Type") < body;
    if (status == 400 && !is_json) return; /* libmicrohttpd's own refusal of a malformed request */
    FUZZ_CHECK((status == 200 || status == 400) && is_json, "answered %d: %.300s", status, answer);
    cJSON *doc = cJSON_Parse(body + 4);
    FUZZ_CHECK(cJSON_IsObject(doc), "answered %d with a body that is not a JSON object: %.300s", status, body + 4);
    if (status == 200) check_episodes(doc);
    else check_refusal(doc);
    cJSON_Delete(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_QUERY) return 0;
    if (!node) start_node();
    char *req = request_for(data, size);
    size_t len;
    char *answer = exchange(req, &len);
    check_answer(answer);
    free(answer);
    free(req);
    return 0;
}
