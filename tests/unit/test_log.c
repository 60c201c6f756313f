/* test_log.c — passwords never reach a log line: vg_mask_url on one URL, vg_mask_urls_in on free text
 * (FFmpeg messages, error strings) with several URLs, no password, or a truncated buffer; vg_log_limit says a
 * repeating line at most once per interval and counts the rest; vg_log_utc_text. */
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

    /* vg_log_limit: the first line at once, then at most one per interval, with the count held back */
    vg_log_limit limit = {0};
    long held = -1, said = 0;
    for (long long ms = 1000; ms < 1000 + 25000; ms += 10) said += vg_log_limit_pass(&limit, ms, 10000, &held);
    CHECK_INT(said, 3); /* at 1000, 11000 and 21000 */
    CHECK_INT(held, 999);
    CHECK_INT(vg_log_limit_pass(&limit, 31000, 10000, &held), 1);
    CHECK_INT(held, 499); /* 21010..24990 */

    /* vg_log_utc_text: the sink's and the report's UTC times, before the epoch too */
    CHECK_STR(vg_log_utc_text(1795977789120LL, out, sizeof out), "2026-11-29 18:43:09.120 UTC");
    CHECK_STR(vg_log_utc_text(0, out, sizeof out), "1970-01-01 00:00:00.000 UTC");
    CHECK_STR(vg_log_utc_text(-1, out, sizeof out), "1969-12-31 23:59:59.999 UTC");
    CHECK_STR(vg_log_utc_text(-1000, out, sizeof out), "1969-12-31 23:59:59.000 UTC");
    CHECK_STR(vg_log_utc_text(-1001, out, sizeof out), "1969-12-31 23:59:58.999 UTC");
    CHECK(strlen(vg_log_utc_text(INT64_MIN, out, sizeof out)) > 0); /* no overflow on the way */
    return CHECK_DONE();
}
