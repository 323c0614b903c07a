/*
 * focus-capture -- record X11 input events (XRecord, libXtst) into binary event segments.
 *
 *   focus-capture --landing DIR --user U --device D [--rotate-seconds 60] [--rotate-bytes N]
 *                 [--consent-keys] [--exclude-app NAME]... [--status-file PATH] [--display :0]
 *
 * Writes landing/events/<user>/<device>/<YYYY-MM-DD>/events-<stamp>-n<seq>.bin through the
 * focus_segment library (header | 64-byte records | footer, written as .part, fsync, rename).
 * Segments rotate when the event time leaves the current window (rotate-seconds, aligned to
 * the epoch), when the file would pass rotate-bytes, and at the end of each window even if no
 * further event comes (so data lands within one window).
 *
 * Records: KEY_PRESS / KEY_RELEASE (key codes, scan codes and modifier flags are 0 unless
 * --consent-keys), MOUSE_MOVE (root x, y, speed in px/s), MOUSE_CLICK (x, y, button 1 left,
 * 2 right, 3 middle, 4 back, 5 forward), MOUSE_WHEEL (dx, dy in notches: up/right positive).
 * Every record carries the focused window (EWMH _NET_ACTIVE_WINDOW), its _NET_WM_PID and the
 * process name (/proc/<pid>/comm) -- except for apps named by --exclude-app (the collector's
 * privacy.exclude_apps; compared case-insensitively with the process name and the WM_CLASS
 * instance): their records say "[excluded]" with pid 0, and the input is still counted.
 *
 * Signals: SIGTERM / SIGINT seal the open segment and exit 0 (after draining the events the
 * server already recorded); SIGHUP seals now and goes on. On Linux the process asks for
 * SIGTERM when its parent dies, so a supervisor killed with SIGKILL still leaves sealed
 * segments. SIGKILL of this process leaves only a .part file (never a corrupt segment).
 *
 * Disk full / unwritable landing: the segment is abandoned (its .part removed), its events and
 * every event until a write succeeds again are counted as dropped (retry once a second);
 * the process keeps running. --status-file gets a small JSON document (atomically replaced)
 * at start, at each seal, on errors, every 10 s and at exit.
 *
 * Exit codes: 0 clean stop, 2 usage, 3 cannot open the display or no RECORD extension.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <X11/Xlib.h>
#include <X11/Xatom.h>
#include <X11/Xproto.h>
#include <X11/Xutil.h>
#include <X11/extensions/record.h>

#include "focus_event.h"
#include "focus_segment.h"

#define RETRY_US 1000000ull
#define MAX_EXCLUDED 64
#define EXCLUDED_APP "[excluded]"
#define STATUS_EVERY_US 10000000ull

typedef struct {
    /* config */
    const char *landing, *user, *device, *status_file;
    uint64_t rotate_us, rotate_bytes;
    int consent_keys;
    const char *exclude[MAX_EXCLUDED];
    int n_exclude;
    /* X */
    Display *ctrl, *data;
    XRecordContext ctx;
    Atom a_active, a_pid;
    Window root;
    /* focused window */
    uint32_t win, pid;
    char app[32];
    /* segment */
    focus_segment_writer *w;
    uint64_t window_start;       /* of the open segment */
    uint64_t seg_count;
    /* mouse */
    int have_last_move;
    int32_t last_x, last_y;
    uint64_t last_move_us;
    /* counters */
    uint64_t events_seen, events_sealed, events_dropped, segments, seal_failures;
    uint64_t retry_at_us, started_us, last_status_us;
    char last_error[256];
    int end_of_data;
} capture;

static volatile sig_atomic_t g_stop, g_hup;
static int g_sigpipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGHUP)
        g_hup = 1;
    else
        g_stop = 1;
    if (g_sigpipe[1] >= 0) {
        char c = 0;
        ssize_t r = write(g_sigpipe[1], &c, 1);
        (void)r;
    }
    errno = saved;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000ull;
}

static void logmsg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "focus-capture: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void set_error(capture *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof c->last_error, fmt, ap);
    va_end(ap);
    logmsg("%s", c->last_error);
}

/* ------------------------------------------------------------------ status file */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void write_status(capture *c, const char *state)
{
    if (c->status_file == NULL)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", c->status_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return;
    fprintf(f, "{\"pid\": %ld, \"state\": ", (long)getpid());
    json_str(f, state);
    fprintf(f, ", \"started_us\": %llu, \"updated_us\": %llu, \"events_seen\": %llu, "
               "\"events_sealed\": %llu, \"events_dropped\": %llu, \"segments\": %llu, "
               "\"open_segment_events\": %llu, \"key_identity_consent\": %s, \"last_error\": ",
            (unsigned long long)c->started_us, (unsigned long long)now_us(),
            (unsigned long long)c->events_seen, (unsigned long long)c->events_sealed,
            (unsigned long long)c->events_dropped, (unsigned long long)c->segments,
            (unsigned long long)c->seg_count, c->consent_keys ? "true" : "false");
    if (c->last_error[0])
        json_str(f, c->last_error);
    else
        fputs("null", f);
    fputs("}\n", f);
    if (fclose(f) == 0)
        rename(tmp, c->status_file);
    else
        unlink(tmp);
    c->last_status_us = now_us();
}

/* ------------------------------------------------------------------ segments */

static int mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static void seal(capture *c)
{
    if (c->w == NULL)
        return;
    char detail[512];
    uint64_t n = c->seg_count;
    focus_seg_status st = focus_segment_seal(c->w, detail, sizeof detail);
    c->w = NULL;
    c->seg_count = 0;
    if (st == FOCUS_SEG_OK) {
        c->events_sealed += n;
        c->segments++;
        c->last_error[0] = '\0';
    } else {
        c->events_dropped += n;    /* the library removed the .part: nothing published */
        c->seal_failures++;
        c->retry_at_us = now_us() + RETRY_US;
        set_error(c, "seal failed (%s): %s", focus_seg_reason(st), detail);
    }
    write_status(c, "running");
}

static int open_segment(capture *c, uint64_t ts)
{
    uint64_t win = ts - ts % c->rotate_us;
    time_t secs = (time_t)(win / 1000000ull);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char day[16], stamp[32], dir[4096], path[4200];
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(dir, sizeof dir, "%s/events/%s/%s/%s", c->landing, c->user, c->device, day);
    if (mkdirs(dir) != 0) {
        set_error(c, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    uint32_t flags = c->consent_keys ? FOCUS_FLAG_KEY_IDENTITY_CONSENT : 0;
    for (unsigned seq = 0; seq < 10000; seq++) {
        snprintf(path, sizeof path, "%s/events-%s-n%04u.bin", dir, stamp, seq);
        char ppath[4300];
        snprintf(ppath, sizeof ppath, "%s.part", path);
        if (access(path, F_OK) == 0 || access(ppath, F_OK) == 0)
            continue;
        char detail[512];
        focus_seg_status st = focus_segment_open(&c->w, path, c->user, c->device, flags, ts,
                                                 detail, sizeof detail);
        if (st == FOCUS_SEG_EXISTS)
            continue;                 /* lost a race for the name: take the next one */
        if (st != FOCUS_SEG_OK) {
            set_error(c, "cannot open segment (%s): %s", focus_seg_reason(st), detail);
            return -1;
        }
        c->window_start = win;
        c->seg_count = 0;
        return 0;
    }
    set_error(c, "no free segment name in %s", dir);
    return -1;
}

static void emit(capture *c, Event *ev)
{
    c->events_seen++;
    uint64_t ts = ev->timestamp_us;
    if (c->w != NULL && (ts - ts % c->rotate_us != c->window_start ||
                         (c->seg_count + 1) * sizeof(Event) + sizeof(SegmentHeader) +
                         sizeof(SegmentFooter) > c->rotate_bytes))
        seal(c);
    if (c->w == NULL) {
        if (ts < c->retry_at_us || open_segment(c, ts) != 0) {
            if (ts >= c->retry_at_us) {
                c->retry_at_us = ts + RETRY_US;
                write_status(c, "running");
            }
            c->events_dropped++;
            return;
        }
    }
    if (!c->consent_keys && (ev->event_type == EV_KEY_PRESS || ev->event_type == EV_KEY_RELEASE))
        memset(&ev->data, 0, sizeof ev->data);   /* codes and modifier state: identity */
    focus_seg_status st = focus_segment_append(c->w, ev);
    if (st != FOCUS_SEG_OK) {
        set_error(c, "write to %s failed: %s", focus_segment_part_path(c->w), strerror(errno));
        c->events_dropped += c->seg_count + 1;
        focus_segment_abort(c->w);     /* unlinks the .part: nothing half-written stays */
        c->w = NULL;
        c->seg_count = 0;
        c->retry_at_us = ts + RETRY_US;
        write_status(c, "running");
        return;
    }
    c->seg_count++;
}

/* ------------------------------------------------------------------ focused window */

static int ignore_x_error(Display *d, XErrorEvent *e)
{
    (void)d;
    (void)e;
    return 0;   /* windows vanish between notification and query: not an error for us */
}

static unsigned long get_card(capture *c, Window w, Atom prop, Atom type, int *ok)
{
    Atom actual;
    int format;
    unsigned long n = 0, after = 0;
    unsigned char *data = NULL;
    unsigned long v = 0;
    *ok = 0;
    if (XGetWindowProperty(c->ctrl, w, prop, 0, 1, False, type, &actual, &format, &n, &after,
                           &data) == Success && data != NULL) {
        if (n >= 1 && format == 32) {
            v = *(unsigned long *)data;
            *ok = 1;
        }
        XFree(data);
    }
    return v;
}

static void read_comm(uint32_t pid, char *out, size_t len)
{
    char path[64];
    out[0] = '\0';
    snprintf(path, sizeof path, "/proc/%u/comm", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    if (fgets(out, (int)len, f) != NULL)
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

static int excluded(const capture *c, const char *name)
{
    for (int i = 0; i < c->n_exclude; i++)
        if (name[0] && strncasecmp(name, c->exclude[i], 31) == 0)
            return 1;
    return 0;
}

static void update_focus(capture *c)
{
    int ok;
    Window w = (Window)get_card(c, c->root, c->a_active, XA_WINDOW, &ok);
    c->win = ok ? (uint32_t)w : 0;
    c->pid = 0;
    c->app[0] = '\0';
    if (!ok || w == None)
        return;
    unsigned long pid = get_card(c, w, c->a_pid, XA_CARDINAL, &ok);
    int hidden = 0;
    if (ok && pid > 0) {
        char comm[64];
        c->pid = (uint32_t)pid;
        read_comm(c->pid, comm, sizeof comm);
        hidden = excluded(c, comm);
        Event tmp;
        focus_event_set_app_name(&tmp, comm);
        memcpy(c->app, tmp.app_name, sizeof c->app);
    }
    if (c->app[0] == '\0' || (c->n_exclude && !hidden)) {  /* no _NET_WM_PID: the WM_CLASS instance name */
        XClassHint hint = {NULL, NULL};
        if (XGetClassHint(c->ctrl, w, &hint)) {
            if (c->app[0] == '\0') {
                Event tmp;
                focus_event_set_app_name(&tmp, hint.res_name ? hint.res_name : "");
                memcpy(c->app, tmp.app_name, sizeof c->app);
            }
            hidden = hidden || excluded(c, hint.res_name ? hint.res_name : "");
            if (hint.res_name)
                XFree(hint.res_name);
            if (hint.res_class)
                XFree(hint.res_class);
        }
    }
    if (hidden) {
        Event tmp;
        focus_event_set_app_name(&tmp, EXCLUDED_APP);
        memcpy(c->app, tmp.app_name, sizeof c->app);
        c->pid = 0;
    }
}

static void drain_ctrl(capture *c)
{
    while (XPending(c->ctrl) > 0) {
        XEvent e;
        XNextEvent(c->ctrl, &e);
        if (e.type == PropertyNotify && e.xproperty.atom == c->a_active)
            update_focus(c);
    }
}

/* ------------------------------------------------------------------ XRecord */

static void on_record(XPointer closure, XRecordInterceptData *d)
{
    capture *c = (capture *)closure;
    if (d->category == XRecordEndOfData)
        c->end_of_data = 1;
    if (d->category != XRecordFromServer || d->data == NULL || d->data_len * 4 < sizeof(xEvent)) {
        XRecordFreeData(d);
        return;
    }
    const xEvent *xe = (const xEvent *)d->data;
    int type = xe->u.u.type & 0x7f;
    unsigned detail = xe->u.u.detail;
    int32_t x = xe->u.keyButtonPointer.rootX, y = xe->u.keyButtonPointer.rootY;
    uint64_t ts = now_us();
    Event ev;
    memset(&ev, 0, sizeof ev);
    ev.timestamp_us = ts;
    ev.process_id = c->pid;
    ev.window_handle = c->win;
    memcpy(ev.app_name, c->app, sizeof ev.app_name);
    switch (type) {
    case KeyPress:
    case KeyRelease:
        ev.event_type = type == KeyPress ? EV_KEY_PRESS : EV_KEY_RELEASE;
        if (c->consent_keys) {
            ev.data.key.virtual_key_code = detail;                /* X keycode */
            ev.data.key.scan_code = detail >= 8 ? detail - 8 : 0;  /* evdev scan code */
            ev.data.key.flags = xe->u.keyButtonPointer.state;     /* modifier mask */
        }
        break;
    case ButtonPress:
        if (detail >= 4 && detail <= 7) {
            ev.event_type = EV_MOUSE_WHEEL;
            ev.data.mouse_wheel.dx = detail == 6 ? -1 : detail == 7 ? 1 : 0;
            ev.data.mouse_wheel.dy = detail == 4 ? 1 : detail == 5 ? -1 : 0;
        } else {
            static const uint32_t map[10] = {0, 1, 3, 2, 0, 0, 0, 0, 4, 5};
            ev.event_type = EV_MOUSE_CLICK;
            ev.data.mouse_click.x = x;
            ev.data.mouse_click.y = y;
            ev.data.mouse_click.button = detail < 10 ? map[detail] : detail;
        }
        break;
    case MotionNotify: {
        ev.event_type = EV_MOUSE_MOVE;
        ev.data.mouse_move.x = x;
        ev.data.mouse_move.y = y;
        if (c->have_last_move && ts > c->last_move_us) {
            double dist = hypot((double)(x - c->last_x), (double)(y - c->last_y));
            double pps = dist * 1e6 / (double)(ts - c->last_move_us);
            ev.data.mouse_move.speed_pps = pps > 4e9 ? 4000000000u : (uint32_t)pps;
        }
        c->have_last_move = 1;
        c->last_x = x;
        c->last_y = y;
        c->last_move_us = ts;
        break;
    }
    default:   /* ButtonRelease and anything else: no record type */
        XRecordFreeData(d);
        return;
    }
    emit(c, &ev);
    XRecordFreeData(d);
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fputs("usage: focus-capture --landing DIR --user USER_ID --device DEVICE_ID\n"
          "                     [--rotate-seconds 60] [--rotate-bytes 8388608] [--consent-keys]\n"
          "                     [--exclude-app NAME]... [--status-file PATH] [--display NAME]\n", f);
}

int main(int argc, char **argv)
{
    capture c;
    memset(&c, 0, sizeof c);
    c.rotate_us = 60ull * 1000000ull;
    c.rotate_bytes = 8ull << 20;
    const char *display_name = NULL;
    static const struct option opts[] = {
        {"landing", required_argument, 0, 'l'}, {"user", required_argument, 0, 'u'},
        {"device", required_argument, 0, 'd'}, {"rotate-seconds", required_argument, 0, 'r'},
        {"rotate-bytes", required_argument, 0, 'b'}, {"consent-keys", no_argument, 0, 'k'},
        {"status-file", required_argument, 0, 's'}, {"display", required_argument, 0, 'D'},
        {"exclude-app", required_argument, 0, 'x'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        switch (o) {
        case 'l': c.landing = optarg; break;
        case 'u': c.user = optarg; break;
        case 'd': c.device = optarg; break;
        case 'k': c.consent_keys = 1; break;
        case 'x':
            if (c.n_exclude == MAX_EXCLUDED || !optarg[0]) {
                fprintf(stderr, "focus-capture: at most %d non-empty --exclude-app names\n", MAX_EXCLUDED);
                return 2;
            }
            c.exclude[c.n_exclude++] = optarg;
            break;
        case 's': c.status_file = optarg; break;
        case 'D': display_name = optarg; break;
        case 'r': {
            double s = strtod(optarg, &end);
            if (end == optarg || *end || !(s >= 0.001) || s > 86400) {
                fprintf(stderr, "focus-capture: --rotate-seconds must be in (0, 86400]: %s\n", optarg);
                return 2;
            }
            c.rotate_us = (uint64_t)(s * 1e6);
            break;
        }
        case 'b': {
            unsigned long long b = strtoull(optarg, &end, 10);
            if (end == optarg || *end || b < 4096) {
                fprintf(stderr, "focus-capture: --rotate-bytes must be an integer >= 4096: %s\n", optarg);
                return 2;
            }
            c.rotate_bytes = b;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!c.landing || !c.user || !c.device || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (!focus_valid_id(c.user) || !focus_valid_id(c.device)) {
        fprintf(stderr, "focus-capture: user and device ids must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,19}$\n");
        return 2;
    }
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM);   /* supervisor gone (even by SIGKILL): seal and exit */
    if (getppid() == 1)
        g_stop = 1;
#endif
    if (pipe(g_sigpipe) != 0) {
        perror("focus-capture: pipe");
        return 1;
    }
    fcntl(g_sigpipe[0], F_SETFL, O_NONBLOCK);
    fcntl(g_sigpipe[1], F_SETFL, O_NONBLOCK);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    c.started_us = now_us();
    c.ctrl = XOpenDisplay(display_name);
    c.data = XOpenDisplay(display_name);
    if (!c.ctrl || !c.data) {
        fprintf(stderr, "focus-capture: cannot open display %s\n",
                display_name ? display_name : (getenv("DISPLAY") ? getenv("DISPLAY") : "(DISPLAY unset)"));
        return 3;
    }
    XSetErrorHandler(ignore_x_error);
    int major = 0, minor = 0;
    if (!XRecordQueryVersion(c.ctrl, &major, &minor)) {
        fprintf(stderr, "focus-capture: the X server has no RECORD extension\n");
        return 3;
    }
    c.root = DefaultRootWindow(c.ctrl);
    c.a_active = XInternAtom(c.ctrl, "_NET_ACTIVE_WINDOW", False);
    c.a_pid = XInternAtom(c.ctrl, "_NET_WM_PID", False);
    XSelectInput(c.ctrl, c.root, PropertyChangeMask);
    update_focus(&c);

    XRecordRange *range = XRecordAllocRange();
    if (range == NULL) {
        fprintf(stderr, "focus-capture: out of memory\n");
        return 1;
    }
    range->device_events.first = KeyPress;
    range->device_events.last = MotionNotify;
    XRecordClientSpec spec = XRecordAllClients;
    c.ctx = XRecordCreateContext(c.ctrl, 0, &spec, 1, &range, 1);
    XFree(range);
    if (!c.ctx) {
        fprintf(stderr, "focus-capture: XRecordCreateContext failed\n");
        return 3;
    }
    XSync(c.ctrl, False);
    if (!XRecordEnableContextAsync(c.data, c.ctx, on_record, (XPointer)&c)) {
        fprintf(stderr, "focus-capture: XRecordEnableContextAsync failed\n");
        return 3;
    }
    write_status(&c, "running");
    logmsg("recording (RECORD %d.%d), key identity %s, rotate %.3f s", major, minor,
           c.consent_keys ? "RECORDED (consent)" : "not recorded", (double)c.rotate_us / 1e6);

    int fd_data = ConnectionNumber(c.data), fd_ctrl = ConnectionNumber(c.ctrl);
    while (!g_stop) {
        uint64_t now = now_us();
        if (c.w != NULL && now >= c.window_start + c.rotate_us)
            seal(&c);                      /* the window is over: publish without waiting */
        if (g_hup) {
            g_hup = 0;
            seal(&c);
        }
        if (now >= c.last_status_us + STATUS_EVERY_US)
            write_status(&c, "running");
        uint64_t wake = c.last_status_us + STATUS_EVERY_US;
        if (c.w != NULL && c.window_start + c.rotate_us < wake)
            wake = c.window_start + c.rotate_us;
        uint64_t wait = wake > now ? wake - now : 0;
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(fd_data, &rd);
        FD_SET(fd_ctrl, &rd);
        FD_SET(g_sigpipe[0], &rd);
        int maxfd = fd_data > fd_ctrl ? fd_data : fd_ctrl;
        if (g_sigpipe[0] > maxfd)
            maxfd = g_sigpipe[0];
        struct timeval tv = {(time_t)(wait / 1000000ull), (suseconds_t)(wait % 1000000ull)};
        XFlush(c.ctrl);
        int r = select(maxfd + 1, &rd, NULL, NULL, &tv);
        if (r < 0 && errno != EINTR) {
            set_error(&c, "select: %s", strerror(errno));
            break;
        }
        if (r > 0 && FD_ISSET(g_sigpipe[0], &rd)) {
            char buf[16];
            while (read(g_sigpipe[0], buf, sizeof buf) > 0) {
            }
        }
        drain_ctrl(&c);                       /* focus first: events after it carry it */
        XRecordProcessReplies(c.data);
    }

    /* Stop: let the server finish what it recorded, then seal. */
    XRecordDisableContext(c.ctrl, c.ctx);
    XFlush(c.ctrl);
    uint64_t deadline = now_us() + 500000ull;
    while (!c.end_of_data && now_us() < deadline) {
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(fd_data, &rd);
        struct timeval tv = {0, 50000};
        if (select(fd_data + 1, &rd, NULL, NULL, &tv) > 0 || XPending(c.data))
            XRecordProcessReplies(c.data);
    }
    seal(&c);
    write_status(&c, "stopped");
    logmsg("stopped: %llu events seen, %llu sealed in %llu segments, %llu dropped",
           (unsigned long long)c.events_seen, (unsigned long long)c.events_sealed,
           (unsigned long long)c.segments, (unsigned long long)c.events_dropped);
    XRecordFreeContext(c.ctrl, c.ctx);
    XCloseDisplay(c.data);
    XCloseDisplay(c.ctrl);
    return 0;
}
