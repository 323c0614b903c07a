/*
 * focus-seg -- write and dump binary event segments from/to a line-oriented text format.
 *
 *   focus-seg write --user U --device D [--flags N] [--created-us T] OUT_PATH   < records.txt
 *   focus-seg dump PATH
 *
 * Record line (write input and dump output), whitespace-separated:
 *   timestamp_us event_type process_id app_name window_handle d0 d1 d2
 * d0, d1, d2 are the three little-endian 32-bit words of the data union. On input d0/d1 may
 * be signed int32 or uint32 and d2 is uint32; dump prints d0/d1 as signed int32, d2 as uint32.
 * app_name: "-" means empty; bytes <= 0x20, 0x7f and '\' are written as \xHH (dump escapes
 * them, write decodes them), so dump output fed back to write reproduces the same bytes.
 * On input, empty lines and lines starting with '#' are skipped.
 *
 * Exit status: 0 ok, 1 invalid input / invalid segment / I/O error, 2 usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include "focus_segment.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG "focus-seg"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROG " write --user U --device D [--flags N] [--created-us T] OUT_PATH\n"
            "       " PROG " dump PATH\n"
            "record lines: timestamp_us event_type process_id app_name window_handle d0 d1 d2\n");
}

/* ------------------------------------------------------------------ number parsing */

static int parse_u64(const char *s, int base, uint64_t max, uint64_t *out)
{
    /* digits only: no sign, no leading space, no 0x (strtoull would accept all three) */
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ' || *s == '\t' ||
        (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')))
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (errno != 0 || *end != '\0' || v > max)
        return 0;
    *out = (uint64_t)v;
    return 1;
}

static int parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;
    if (!parse_u64(s, 10, UINT32_MAX, &v))
        return 0;
    *out = (uint32_t)v;
    return 1;
}

/* int32 (two's complement) or uint32, stored as the 32-bit word */
static int parse_word(const char *s, uint32_t *out)
{
    if (s && s[0] == '-') {
        if (s[1] < '0' || s[1] > '9')
            return 0;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0' || v < INT32_MIN)
            return 0;
        *out = (uint32_t)(int32_t)v;
        return 1;
    }
    return parse_u32(s, out);
}

/* ------------------------------------------------------------------ app_name escaping */

static int needs_escape(unsigned char b) { return b <= 0x20u || b == 0x7fu || b == '\\'; }

static void print_name(FILE *out, const char *field, size_t width)
{
    size_t n = width;
    while (n > 0 && field[n - 1] == '\0')
        n--;
    if (n == 0) {
        fputc('-', out);
        return;
    }
    if (n == 1 && field[0] == '-') {
        fputs("\\x2d", out);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)field[i];
        if (needs_escape(b))
            fprintf(out, "\\x%02x", b);
        else
            fputc(b, out);
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode an app_name token into the 32-byte field. Returns NULL or an error message. */
static const char *decode_name(const char *tok, char field[32])
{
    memset(field, 0, 32);
    if (strcmp(tok, "-") == 0)
        return NULL;
    size_t n = 0;
    for (const char *p = tok; *p; ) {
        unsigned char b;
        if (*p == '\\') {
            int hi, lo;
            if (p[1] != 'x' || (hi = hexval(p[2])) < 0 || (lo = hexval(p[3])) < 0)
                return "bad escape in app_name (only \\xHH is allowed)";
            b = (unsigned char)(hi * 16 + lo);
            p += 4;
        } else {
            b = (unsigned char)*p++;
        }
        if (n == 32)
            return "app_name longer than 32 bytes";
        field[n++] = (char)b;
    }
    return NULL;
}

/* ------------------------------------------------------------------ write */

static int split_fields(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        if (*p == '\0')
            return n;
        if (n == max)
            return max + 1;
        fields[n++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            p++;
        if (*p)
            *p++ = '\0';
    }
}

static const char *parse_record(char **f, Event *ev)
{
    uint64_t ts;
    uint32_t w[3];
    memset(ev, 0, sizeof *ev);
    if (!parse_u64(f[0], 10, UINT64_MAX, &ts)) return "timestamp_us is not a uint64";
    ev->timestamp_us = ts;
    if (!parse_u32(f[1], &ev->event_type)) return "event_type is not a uint32";
    if (!parse_u32(f[2], &ev->process_id)) return "process_id is not a uint32";
    const char *err = decode_name(f[3], ev->app_name);
    if (err) return err;
    if (!parse_u32(f[4], &ev->window_handle)) return "window_handle is not a uint32";
    if (!parse_word(f[5], &w[0])) return "d0 is not an int32/uint32";
    if (!parse_word(f[6], &w[1])) return "d1 is not an int32/uint32";
    if (!parse_u32(f[7], &w[2])) return "d2 is not a uint32";
    memcpy(ev->data.raw_data, w, sizeof w);   /* little-endian host: words in order */
    return NULL;
}

static int opt_value(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *out = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, PROG " write: %s needs a value\n", name);
        exit(2);
    }
    *out = argv[++*i];
    return 1;
}

static int cmd_write(int argc, char **argv)
{
    const char *user = NULL, *device = NULL, *flags_s = NULL, *created_s = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (opt_value(argc, argv, &i, "--user", &user)) continue;
        if (opt_value(argc, argv, &i, "--device", &device)) continue;
        if (opt_value(argc, argv, &i, "--flags", &flags_s)) continue;
        if (opt_value(argc, argv, &i, "--created-us", &created_s)) continue;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, PROG " write: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (out) {
            fprintf(stderr, PROG " write: more than one OUT_PATH\n");
            return 2;
        }
        out = argv[i];
    }
    if (!user || !device || !out) {
        fprintf(stderr, PROG " write: --user, --device and OUT_PATH are required\n");
        usage(stderr);
        return 2;
    }
    uint64_t flags = 0, created = 0;
    int hex = flags_s && flags_s[0] == '0' && (flags_s[1] == 'x' || flags_s[1] == 'X');
    if (flags_s && !parse_u64(hex ? flags_s + 2 : flags_s, hex ? 16 : 10, UINT32_MAX, &flags)) {
        fprintf(stderr, PROG " write: --flags %s is not a uint32\n", flags_s);
        return 2;
    }
    if (created_s) {
        if (!parse_u64(created_s, 10, UINT64_MAX, &created)) {
            fprintf(stderr, PROG " write: --created-us %s is not a uint64\n", created_s);
            return 2;
        }
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        created = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    }

    char detail[512] = "";
    focus_segment_writer *w = NULL;
    focus_seg_status st = focus_segment_open(&w, out, user, device, (uint32_t)flags, created,
                                             detail, sizeof detail);
    if (st != FOCUS_SEG_OK) {
        fprintf(stderr, PROG " write: %s: %s\n", focus_seg_reason(st), detail);
        return st == FOCUS_SEG_INVALID_ARGUMENT ? 2 : 1;
    }

    char *line = NULL;
    size_t cap = 0;
    unsigned long long lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, stdin) != -1) {
        lineno++;
        char *f[8];
        int nf = split_fields(line, f, 8);
        if (nf == 0 || f[0][0] == '#')
            continue;
        if (nf != 8) {
            fprintf(stderr, PROG " write: line %llu: expected 8 fields "
                    "(timestamp_us event_type process_id app_name window_handle d0 d1 d2), "
                    "got %s%d\n", lineno, nf > 8 ? "more than " : "", nf > 8 ? 8 : nf);
            rc = 1;
            break;
        }
        Event ev;
        const char *err = parse_record(f, &ev);
        if (err) {
            fprintf(stderr, PROG " write: line %llu: %s\n", lineno, err);
            rc = 1;
            break;
        }
        st = focus_segment_append(w, &ev);
        if (st != FOCUS_SEG_OK) {
            fprintf(stderr, PROG " write: %s: append to %s: %s\n", focus_seg_reason(st),
                    focus_segment_part_path(w), strerror(errno));
            rc = 1;
            break;
        }
    }
    if (rc == 0 && ferror(stdin)) {
        fprintf(stderr, PROG " write: reading stdin: %s\n", strerror(errno));
        rc = 1;
    }
    free(line);
    if (rc != 0) {
        focus_segment_abort(w);   /* nothing is published */
        return rc;
    }
    st = focus_segment_seal(w, detail, sizeof detail);
    if (st != FOCUS_SEG_OK) {
        fprintf(stderr, PROG " write: %s: %s\n", focus_seg_reason(st), detail);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ dump */

static int cmd_dump(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
            usage(stdout);
            return 0;
        }
        usage(stderr);
        return 2;
    }
    const char *path = argv[1];
    char detail[512] = "";
    focus_segment seg;
    focus_seg_status st = focus_segment_load(path, &seg, detail, sizeof detail);
    if (st != FOCUS_SEG_OK) {
        fprintf(stderr, PROG " dump: %s: %s: %s\n", path, focus_seg_reason(st), detail);
        return 1;
    }
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    const SegmentHeader *h = &seg.header;
    printf("header version=%u record_size=%u flags=%" PRIu32 " created_us=%" PRIu64 " user_id=",
           (unsigned)h->version, (unsigned)h->record_size, h->flags, h->created_us);
    print_name(stdout, h->user_id, FOCUS_ID_LEN);
    fputs(" device_id=", stdout);
    print_name(stdout, h->device_id, FOCUS_ID_LEN);
    fputc('\n', stdout);
    for (uint64_t i = 0; i < seg.count; i++) {
        const Event *e = &seg.records[i];
        uint32_t w[3];
        memcpy(w, e->data.raw_data, sizeof w);
        printf("%" PRIu64 " %" PRIu32 " %" PRIu32 " ", e->timestamp_us, e->event_type,
               e->process_id);
        print_name(stdout, e->app_name, sizeof e->app_name);
        printf(" %" PRIu32 " %" PRId32 " %" PRId32 " %" PRIu32 "\n", e->window_handle,
               (int32_t)w[0], (int32_t)w[1], w[2]);
    }
    printf("footer count=%" PRIu64 " crc32=0x%08" PRIx32 "\n", seg.count, seg.crc32);
    focus_segment_free(&seg);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, PROG " dump: writing stdout: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "write") == 0)
        return cmd_write(argc - 1, argv + 1);
    if (strcmp(argv[1], "dump") == 0)
        return cmd_dump(argc - 1, argv + 1);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, PROG ": unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
