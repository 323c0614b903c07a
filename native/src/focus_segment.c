/*
 * focus_segment.c -- binary segment writer/reader (see focus_segment.h, focus_event.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "focus_segment.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "focus_segment writes the in-memory Event struct: a little-endian host is required"
#endif

#define PART_SUFFIX ".part"
#define WRITE_BUFFER_BYTES (1u << 20)

static void set_detail(char *detail, size_t len, const char *fmt, ...)
{
    if (detail == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, len, fmt, ap);
    va_end(ap);
}

const char *focus_seg_reason(focus_seg_status status)
{
    switch (status) {
    case FOCUS_SEG_OK: return "ok";
    case FOCUS_SEG_TRUNCATED: return "truncated";
    case FOCUS_SEG_BAD_MAGIC: return "bad_magic";
    case FOCUS_SEG_UNSUPPORTED_VERSION: return "unsupported_version";
    case FOCUS_SEG_BAD_RECORD_SIZE: return "bad_record_size";
    case FOCUS_SEG_MISSING_FOOTER: return "missing_footer";
    case FOCUS_SEG_COUNT_MISMATCH: return "count_mismatch";
    case FOCUS_SEG_BAD_CHECKSUM: return "bad_checksum";
    case FOCUS_SEG_BAD_HEADER: return "bad_header";
    case FOCUS_SEG_IO_ERROR: return "io_error";
    case FOCUS_SEG_INVALID_ARGUMENT: return "invalid_argument";
    case FOCUS_SEG_EXISTS: return "exists";
    case FOCUS_SEG_NO_MEMORY: return "no_memory";
    }
    return "unknown_status";
}

/* ------------------------------------------------------------------ CRC-32 */
/* Reflected CRC-32, polynomial 0xEDB88320, init/xorout 0xFFFFFFFF (IEEE 802.3 / zlib).
 * Table-driven, eight tables ("slicing-by-8") so a 64-byte record costs 8 steps. */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : (c >> 1);
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = crc_table[0][n];
        for (int t = 1; t < 8; t++) {
            c = crc_table[0][c & 0xFFu] ^ (c >> 8);
            crc_table[t][n] = c;
        }
    }
}

uint32_t focus_crc32(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = buf;
    uint32_t c = ~crc;
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);      /* little-endian host: bytes p[0..3] in order */
        memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = crc_table[7][lo & 0xFFu] ^ crc_table[6][(lo >> 8) & 0xFFu] ^
            crc_table[5][(lo >> 16) & 0xFFu] ^ crc_table[4][lo >> 24] ^
            crc_table[3][hi & 0xFFu] ^ crc_table[2][(hi >> 8) & 0xFFu] ^
            crc_table[1][(hi >> 16) & 0xFFu] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = crc_table[0][(c ^ *p++) & 0xFFu] ^ (c >> 8);
    return ~c;
}

/* ------------------------------------------------------------------ helpers */

static int id_char(char ch, int first)
{
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
        return 1;
    return !first && (ch == '_' || ch == '.' || ch == '-');
}

int focus_valid_id(const char *id)
{
    if (id == NULL || id[0] == '\0')
        return 0;
    size_t i = 0;
    for (; id[i] != '\0'; i++) {
        if (i >= FOCUS_ID_LEN || !id_char(id[i], i == 0))
            return 0;
    }
    return 1;
}

int focus_event_set_app_name(Event *ev, const char *name)
{
    const size_t max = sizeof ev->app_name - 1;
    size_t n = name ? strlen(name) : 0;
    int cut = 0;
    if (n > max) {
        n = max;
        /* step back over UTF-8 continuation bytes so no character is split */
        while (n > 0 && ((unsigned char)name[n] & 0xC0u) == 0x80u)
            n--;
        cut = 1;
    }
    memset(ev->app_name, 0, sizeof ev->app_name);
    if (n)
        memcpy(ev->app_name, name, n);
    return cut;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return dup_str(".");
    if (slash == path)
        return dup_str("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

/* ------------------------------------------------------------------ writer */

struct focus_segment_writer {
    FILE *fp;
    char *final_path;
    char *part_path;
    char *dir_path;
    char *iobuf;
    uint32_t flags;
    uint32_t crc;
    uint64_t count;
    int error;          /* sticky errno of the first failed write, 0 if none */
};

static void writer_free(focus_segment_writer *w)
{
    if (w == NULL)
        return;
    free(w->final_path);
    free(w->part_path);
    free(w->dir_path);
    free(w->iobuf);
    free(w);
}

focus_seg_status focus_segment_open(focus_segment_writer **out, const char *final_path,
                                    const char *user_id, const char *device_id,
                                    uint32_t flags, uint64_t created_us,
                                    char *detail, size_t detail_len)
{
    if (out == NULL)
        return FOCUS_SEG_INVALID_ARGUMENT;
    *out = NULL;
    if (final_path == NULL || final_path[0] == '\0') {
        set_detail(detail, detail_len, "empty output path");
        return FOCUS_SEG_INVALID_ARGUMENT;
    }
    if (!focus_valid_id(user_id)) {
        set_detail(detail, detail_len, "user_id '%s' must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,19}$",
                   user_id ? user_id : "");
        return FOCUS_SEG_INVALID_ARGUMENT;
    }
    if (!focus_valid_id(device_id)) {
        set_detail(detail, detail_len,
                   "device_id '%s' must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,19}$",
                   device_id ? device_id : "");
        return FOCUS_SEG_INVALID_ARGUMENT;
    }

    focus_segment_writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return FOCUS_SEG_NO_MEMORY;
    size_t n = strlen(final_path);
    w->final_path = dup_str(final_path);
    w->part_path = malloc(n + sizeof PART_SUFFIX);
    w->dir_path = dir_of(final_path);
    w->iobuf = malloc(WRITE_BUFFER_BYTES);
    if (!w->final_path || !w->part_path || !w->dir_path || !w->iobuf) {
        writer_free(w);
        return FOCUS_SEG_NO_MEMORY;
    }
    memcpy(w->part_path, final_path, n);
    memcpy(w->part_path + n, PART_SUFFIX, sizeof PART_SUFFIX);
    w->flags = flags;

    /* Never replace a published segment (rename() would do so silently). */
    struct stat st;
    if (stat(final_path, &st) == 0) {
        set_detail(detail, detail_len, "%s already exists", final_path);
        writer_free(w);
        return FOCUS_SEG_EXISTS;
    }
    w->fp = fopen(w->part_path, "wbx");   /* C11 exclusive create: O_CREAT|O_EXCL */
    if (w->fp == NULL) {
        int e = errno;
        set_detail(detail, detail_len, "cannot create %s: %s", w->part_path, strerror(e));
        writer_free(w);
        errno = e;
        return e == EEXIST ? FOCUS_SEG_EXISTS : FOCUS_SEG_IO_ERROR;
    }
    setvbuf(w->fp, w->iobuf, _IOFBF, WRITE_BUFFER_BYTES);

    SegmentHeader h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, FOCUS_SEGMENT_MAGIC, sizeof h.magic);
    h.version = FOCUS_FORMAT_VERSION;
    h.record_size = (uint16_t)sizeof(Event);
    h.flags = flags;
    h.created_us = created_us;
    memcpy(h.user_id, user_id, strlen(user_id));
    memcpy(h.device_id, device_id, strlen(device_id));
    if (fwrite(&h, sizeof h, 1, w->fp) != 1) {
        int e = errno;
        set_detail(detail, detail_len, "cannot write header to %s: %s", w->part_path, strerror(e));
        focus_segment_abort(w);
        errno = e;
        return FOCUS_SEG_IO_ERROR;
    }
    *out = w;
    return FOCUS_SEG_OK;
}

static int is_key_event(uint32_t type)
{
    return type == EV_KEY_PRESS || type == EV_KEY_RELEASE;
}

focus_seg_status focus_segment_append(focus_segment_writer *w, const Event *ev)
{
    if (w == NULL || ev == NULL)
        return FOCUS_SEG_INVALID_ARGUMENT;
    if (w->error) {
        errno = w->error;
        return FOCUS_SEG_IO_ERROR;
    }
    Event rec;
    const Event *src = ev;
    if (!(w->flags & FOCUS_FLAG_KEY_IDENTITY_CONSENT) && is_key_event(ev->event_type)) {
        rec = *ev;                         /* no consent: key identity never reaches disk */
        rec.data.key.virtual_key_code = 0;
        rec.data.key.scan_code = 0;
        src = &rec;
    }
    if (fwrite(src, sizeof *src, 1, w->fp) != 1) {
        w->error = errno ? errno : EIO;
        return FOCUS_SEG_IO_ERROR;
    }
    w->crc = focus_crc32(w->crc, src, sizeof *src);
    w->count++;
    return FOCUS_SEG_OK;
}

focus_seg_status focus_segment_append_many(focus_segment_writer *w, const Event *evs, size_t n)
{
    if (w == NULL || (evs == NULL && n > 0))
        return FOCUS_SEG_INVALID_ARGUMENT;
    for (size_t i = 0; i < n; i++) {
        focus_seg_status st = focus_segment_append(w, &evs[i]);
        if (st != FOCUS_SEG_OK)
            return st;
    }
    return FOCUS_SEG_OK;
}

uint64_t focus_segment_count(const focus_segment_writer *w) { return w ? w->count : 0; }
const char *focus_segment_part_path(const focus_segment_writer *w) { return w ? w->part_path : NULL; }
const char *focus_segment_final_path(const focus_segment_writer *w) { return w ? w->final_path : NULL; }

void focus_segment_abort(focus_segment_writer *w)
{
    if (w == NULL)
        return;
    if (w->fp)
        fclose(w->fp);
    w->fp = NULL;
    if (w->part_path)
        unlink(w->part_path);
    writer_free(w);
}

focus_seg_status focus_segment_seal(focus_segment_writer *w, char *detail, size_t detail_len)
{
    if (w == NULL)
        return FOCUS_SEG_INVALID_ARGUMENT;
    int e = w->error;
    const char *step = "write records";
    if (!e) {
        SegmentFooter f;
        memset(&f, 0, sizeof f);
        memcpy(f.magic, FOCUS_FOOTER_MAGIC, sizeof f.magic);
        f.crc32 = w->crc;
        f.record_count = w->count;
        step = "write footer";
        if (fwrite(&f, sizeof f, 1, w->fp) != 1)
            e = errno ? errno : EIO;
    }
    if (!e) {
        step = "fflush";
        if (fflush(w->fp) != 0)
            e = errno ? errno : EIO;
    }
    if (!e) {
        step = "fsync";
        if (fsync(fileno(w->fp)) != 0)
            e = errno;
    }
    if (!e) {
        step = "close";
        int rc = fclose(w->fp);
        w->fp = NULL;
        if (rc != 0)
            e = errno ? errno : EIO;
    }
    if (!e) {
        step = "rename";
        if (rename(w->part_path, w->final_path) != 0)
            e = errno;
    }
    if (e) {
        set_detail(detail, detail_len, "%s of %s failed: %s", step, w->part_path, strerror(e));
        focus_segment_abort(w);
        errno = e;
        return FOCUS_SEG_IO_ERROR;
    }
    /* Published. Make the rename itself durable. */
    focus_seg_status st = FOCUS_SEG_OK;
    int dfd = open(w->dir_path, O_RDONLY);
    if (dfd < 0 || fsync(dfd) != 0) {
        e = errno;
        set_detail(detail, detail_len, "fsync of directory %s failed: %s", w->dir_path, strerror(e));
        st = FOCUS_SEG_IO_ERROR;
    }
    if (dfd >= 0)
        close(dfd);
    writer_free(w);
    if (st != FOCUS_SEG_OK)
        errno = e;
    return st;
}

/* ------------------------------------------------------------------ reader */

/* Mirror of focuslake.events.decode_segment: same checks, same order, same reason codes. */
focus_seg_status focus_segment_validate(const void *buf, size_t len, SegmentHeader *header,
                                        const Event **records, uint64_t *count, uint32_t *crc,
                                        char *detail, size_t detail_len)
{
    const uint8_t *p = buf;
    const size_t hsz = sizeof(SegmentHeader), fsz = sizeof(SegmentFooter);
    if (p == NULL && len > 0)
        return FOCUS_SEG_INVALID_ARGUMENT;
    if (len < hsz + fsz) {
        set_detail(detail, detail_len, "%zu bytes is shorter than header+footer (%zu)", len,
                   hsz + fsz);
        return FOCUS_SEG_TRUNCATED;
    }
    SegmentHeader h;
    memcpy(&h, p, hsz);
    if (memcmp(h.magic, FOCUS_SEGMENT_MAGIC, sizeof h.magic) != 0) {
        set_detail(detail, detail_len, "header magic is not %s", FOCUS_SEGMENT_MAGIC);
        return FOCUS_SEG_BAD_MAGIC;
    }
    if (h.version != FOCUS_FORMAT_VERSION) {
        set_detail(detail, detail_len, "format version %u, this reader knows %d",
                   (unsigned)h.version, FOCUS_FORMAT_VERSION);
        return FOCUS_SEG_UNSUPPORTED_VERSION;
    }
    if (h.record_size != sizeof(Event)) {
        set_detail(detail, detail_len, "record size %u != %zu", (unsigned)h.record_size,
                   sizeof(Event));
        return FOCUS_SEG_BAD_RECORD_SIZE;
    }
    size_t body_len = len - hsz - fsz;
    if (body_len % sizeof(Event)) {
        set_detail(detail, detail_len,
                   "record area of %zu bytes is not a multiple of %zu "
                   "(file cut short or footer missing)", body_len, sizeof(Event));
        return FOCUS_SEG_TRUNCATED;
    }
    SegmentFooter f;
    memcpy(&f, p + len - fsz, fsz);
    if (memcmp(f.magic, FOCUS_FOOTER_MAGIC, sizeof f.magic) != 0) {
        set_detail(detail, detail_len, "footer magic is not %s (segment not sealed)",
                   FOCUS_FOOTER_MAGIC);
        return FOCUS_SEG_MISSING_FOOTER;
    }
    uint64_t n = body_len / sizeof(Event);
    if (f.record_count != n) {
        set_detail(detail, detail_len, "footer says %llu records, file holds %llu",
                   (unsigned long long)f.record_count, (unsigned long long)n);
        return FOCUS_SEG_COUNT_MISMATCH;
    }
    uint32_t c = focus_crc32(0, p + hsz, body_len);
    if (c != f.crc32) {
        set_detail(detail, detail_len, "CRC-32 0x%08x != footer 0x%08x", (unsigned)c,
                   (unsigned)f.crc32);
        return FOCUS_SEG_BAD_CHECKSUM;
    }
    /* ids: ASCII once trailing NULs are stripped (as decode_segment's .decode("ascii")) */
    const char *ids[2] = {h.user_id, h.device_id};
    for (int k = 0; k < 2; k++) {
        size_t m = FOCUS_ID_LEN;
        while (m > 0 && ids[k][m - 1] == '\0')
            m--;
        for (size_t i = 0; i < m; i++) {
            if ((unsigned char)ids[k][i] >= 0x80u) {
                set_detail(detail, detail_len, "%s is not ASCII", k ? "device_id" : "user_id");
                return FOCUS_SEG_BAD_HEADER;
            }
        }
    }
    if (header)
        *header = h;
    if (records)
        *records = (const Event *)(const void *)(p + hsz);
    if (count)
        *count = n;
    if (crc)
        *crc = c;
    return FOCUS_SEG_OK;
}

focus_seg_status focus_segment_load(const char *path, focus_segment *seg,
                                    char *detail, size_t detail_len)
{
    if (path == NULL || seg == NULL)
        return FOCUS_SEG_INVALID_ARGUMENT;
    memset(seg, 0, sizeof *seg);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        int e = errno;
        set_detail(detail, detail_len, "cannot open %s: %s", path, strerror(e));
        errno = e;
        return FOCUS_SEG_IO_ERROR;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno ? errno : EINVAL;
        set_detail(detail, detail_len, "%s is not a regular file", path);
        fclose(fp);
        errno = e;
        return FOCUS_SEG_IO_ERROR;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (data == NULL) {
        fclose(fp);
        return FOCUS_SEG_NO_MEMORY;
    }
    size_t got = fread(data, 1, size, fp);
    int read_err = ferror(fp);
    int e = errno;
    fclose(fp);
    if (read_err || got != size) {
        set_detail(detail, detail_len, "cannot read %s: %s", path,
                   read_err ? strerror(e) : "file changed size while reading");
        free(data);
        errno = read_err ? e : EIO;
        return FOCUS_SEG_IO_ERROR;
    }
    focus_seg_status rc = focus_segment_validate(data, size, &seg->header, &seg->records,
                                                 &seg->count, &seg->crc32, detail, detail_len);
    if (rc != FOCUS_SEG_OK) {
        free(data);
        memset(seg, 0, sizeof *seg);
        return rc;
    }
    seg->data = data;
    seg->size = size;
    return FOCUS_SEG_OK;
}

void focus_segment_free(focus_segment *seg)
{
    if (seg == NULL)
        return;
    free(seg->data);
    memset(seg, 0, sizeof *seg);
}
