/*
 * focus_segment.h -- write and read binary event segments (layout: focus_event.h).
 *
 * Writer protocol (same as focuslake/segments.py):
 *   open    -> creates "<final>.part" exclusively (O_EXCL); <final> must not exist yet
 *   append  -> 64-byte records, running CRC-32 (IEEE, == zlib.crc32) and count
 *   seal    -> footer, fflush, fsync(file), rename("<final>.part", "<final>"), fsync(dir)
 *   abort   -> close and unlink the .part (nothing is published)
 * Readers never see a half-written segment: until seal() only the .part file exists.
 *
 * Privacy: unless the header flag FOCUS_FLAG_KEY_IDENTITY_CONSENT is set, the writer stores
 * 0 for key.virtual_key_code and key.scan_code of EV_KEY_PRESS / EV_KEY_RELEASE records,
 * whatever the caller passes (key.flags is kept).
 *
 * Reader: validates exactly like focuslake.events.decode_segment and reports the same
 * reason codes (focus_seg_reason): truncated, bad_magic, unsupported_version,
 * bad_record_size, missing_footer, count_mismatch, bad_checksum, bad_header.
 *
 * Not thread-safe per writer (one writer per thread); distinct writers are independent.
 * Requires a little-endian host (the format is little-endian and records are written as
 * the in-memory struct).
 */
#ifndef FOCUS_SEGMENT_H
#define FOCUS_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "focus_event.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    FOCUS_SEG_OK = 0,
    /* segment validation failures (reason codes shared with focuslake.events.SegmentError) */
    FOCUS_SEG_TRUNCATED,
    FOCUS_SEG_BAD_MAGIC,
    FOCUS_SEG_UNSUPPORTED_VERSION,
    FOCUS_SEG_BAD_RECORD_SIZE,
    FOCUS_SEG_MISSING_FOOTER,
    FOCUS_SEG_COUNT_MISMATCH,
    FOCUS_SEG_BAD_CHECKSUM,
    FOCUS_SEG_BAD_HEADER,
    /* operational failures */
    FOCUS_SEG_IO_ERROR,        /* errno is set */
    FOCUS_SEG_INVALID_ARGUMENT,
    FOCUS_SEG_EXISTS,          /* the final path (or its .part) already exists */
    FOCUS_SEG_NO_MEMORY
} focus_seg_status;

/* Short machine-readable code, e.g. "bad_checksum" (never NULL). */
const char *focus_seg_reason(focus_seg_status status);

/* CRC-32 (reflected, poly 0xEDB88320), chainable exactly like zlib.crc32(data, crc):
 * focus_crc32(0, a, n) == zlib.crc32(a); focus_crc32(focus_crc32(0, a, n), b, m) == crc(a+b). */
uint32_t focus_crc32(uint32_t crc, const void *buf, size_t len);

/* 1 if `id` is a valid user_id/device_id: ^[A-Za-z0-9][A-Za-z0-9_.-]{0,19}$ */
int focus_valid_id(const char *id);

/* Copy a UTF-8 app name into ev->app_name (NUL-padded, at most 31 bytes so the field stays
 * NUL-terminated), cutting at a UTF-8 character boundary if too long. Returns 1 if cut. */
int focus_event_set_app_name(Event *ev, const char *name);

/* ---------------------------------------------------------------- writer */

typedef struct focus_segment_writer focus_segment_writer;

/* Open a writer whose sealed segment will be `final_path` (its directory must exist).
 * created_us goes into the header. On error *out is NULL and a status is returned;
 * if `detail` is not NULL a one-line message is written there. */
focus_seg_status focus_segment_open(focus_segment_writer **out, const char *final_path,
                                    const char *user_id, const char *device_id,
                                    uint32_t flags, uint64_t created_us,
                                    char *detail, size_t detail_len);

/* Append records (copied; the caller's records are never modified). */
focus_seg_status focus_segment_append(focus_segment_writer *w, const Event *ev);
focus_seg_status focus_segment_append_many(focus_segment_writer *w, const Event *evs, size_t n);

uint64_t focus_segment_count(const focus_segment_writer *w);
const char *focus_segment_part_path(const focus_segment_writer *w);
const char *focus_segment_final_path(const focus_segment_writer *w);

/* Write the footer and publish atomically; always frees the writer. On failure the .part
 * file is removed and nothing is published. */
focus_seg_status focus_segment_seal(focus_segment_writer *w, char *detail, size_t detail_len);

/* Discard: close, unlink the .part, free. Safe with NULL. */
void focus_segment_abort(focus_segment_writer *w);

/* ---------------------------------------------------------------- reader */

/* Validate a whole segment held in memory. On success fills *header (may be NULL),
 * *records (points into buf; may be NULL), *count (may be NULL) and *crc (may be NULL). */
focus_seg_status focus_segment_validate(const void *buf, size_t len, SegmentHeader *header,
                                        const Event **records, uint64_t *count, uint32_t *crc,
                                        char *detail, size_t detail_len);

typedef struct {
    SegmentHeader header;
    const Event *records;   /* points into data */
    uint64_t count;
    uint32_t crc32;
    uint8_t *data;          /* whole file */
    size_t size;
} focus_segment;

/* Read and validate a segment file. On success the caller frees with focus_segment_free. */
focus_seg_status focus_segment_load(const char *path, focus_segment *seg,
                                    char *detail, size_t detail_len);
void focus_segment_free(focus_segment *seg);

#ifdef __cplusplus
}
#endif

#endif /* FOCUS_SEGMENT_H */
