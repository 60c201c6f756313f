/* test_log.c — passwords never reach a log line: vg_mask_url on one URL, vg_mask_urls_in on free text
 * (FFmpeg messages, error strings) with several URLs, no password, or a truncated buffer. */
#include "check.h"
#include "vg_log.h"

int main(void) {
    char out[256];
    CHECK_STR(vg_mask_url("rtsp://user:pass@10.0.0.5/stream1", out, sizeof out), "rtsp://user:***@10.0.0.5/stream1");
    CHECK_STR(vg_mask_url("rtsp://10.0.0.5/s", out, sizeof out), "rtsp://10.0.0.5/s");
    CHECK_STR(vg_mask_urls_in("cannot open rtsp://admin:s3cret@cam:554/a?x=1 (rtsps://u:p:q@h/b) ok", out, sizeof out),
              "cannot open rtsp://admin:***@cam:554/a?x=1 (rtsps://u:***@h/b) ok");
    CHECK_STR(vg_mask_urls_in("rtsp://user@host/x and http://h:80/y", out, sizeof out),
              "rtsp://user@host/x and http://h:80/y");
    CHECK_STR(vg_mask_urls_in("at rtsp://a:b@c", out, sizeof out), "at rtsp://a:***@c");
    CHECK_STR(vg_mask_urls_in("://:x@", out, sizeof out), "://:***@");
    CHECK_STR(vg_mask_urls_in("rtsp://user:secretpassword@host", out, 16), "rtsp://user:***");
    CHECK_STR(vg_mask_urls_in("no url", out, 4), "no ");
    CHECK_STR(vg_mask_urls_in(NULL, out, sizeof out), "");
    return CHECK_DONE();
}
