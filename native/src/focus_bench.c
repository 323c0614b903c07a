/*
 * focus-bench N OUT_PATH -- write N synthetic events through libfocussegment (one
 * focus_segment_append per event, as a collector would), seal, and print
 *   events=N seconds=S ns_per_event=X
 * Wall clock (CLOCK_MONOTONIC) covers open + appends + seal (footer, fsync, rename, dir fsync).
 */
#define _POSIX_C_SOURCE 200809L

#include "focus_segment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    unsigned long long n = argc == 3 ? strtoull(argv[1], &end, 10) : 0;
    if (argc != 3 || end == argv[1] || *end != '\0') {
        fprintf(stderr, "usage: focus-bench N OUT_PATH\n");
        return 2;
    }
    static const char *apps[] = {"firefox", "code", "gnome-terminal", "slack", "Café"};
    static const uint32_t types[] = {EV_KEY_PRESS, EV_KEY_RELEASE, EV_MOUSE_MOVE,
                                     EV_MOUSE_CLICK, EV_WINDOW_FOCUS_CHANGE};
    const uint64_t t0 = 1700000000000000ull;
    char detail[512] = "";

    double start = now_s();
    focus_segment_writer *w = NULL;
    focus_seg_status st = focus_segment_open(&w, argv[2], "bench", "bench-dev", 0, t0,
                                             detail, sizeof detail);
    if (st != FOCUS_SEG_OK) {
        fprintf(stderr, "focus-bench: %s: %s\n", focus_seg_reason(st), detail);
        return 1;
    }
    Event ev;
    memset(&ev, 0, sizeof ev);
    for (unsigned long long i = 0; i < n; i++) {
        ev.timestamp_us = t0 + i * 1000u;
        ev.event_type = types[i % 5];
        ev.process_id = 1000u + (uint32_t)(i % 7);
        focus_event_set_app_name(&ev, apps[i % 5]);
        ev.window_handle = 0x4000000u + (uint32_t)(i % 13);
        ev.data.mouse_move.x = (int32_t)(i % 1920) - 100;
        ev.data.mouse_move.y = (int32_t)(i % 1080) - 50;
        ev.data.mouse_move.speed_pps = (uint32_t)(i % 5000);
        st = focus_segment_append(w, &ev);
        if (st != FOCUS_SEG_OK) {
            fprintf(stderr, "focus-bench: append: %s\n", focus_seg_reason(st));
            focus_segment_abort(w);
            return 1;
        }
    }
    st = focus_segment_seal(w, detail, sizeof detail);
    double secs = now_s() - start;
    if (st != FOCUS_SEG_OK) {
        fprintf(stderr, "focus-bench: seal: %s: %s\n", focus_seg_reason(st), detail);
        return 1;
    }
    printf("events=%llu seconds=%.6f ns_per_event=%.1f\n", n, secs,
           n ? secs * 1e9 / (double)n : 0.0);
    return 0;
}
