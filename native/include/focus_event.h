/*
 * focus_event.h -- THE contract for the 64-byte event record and binary segments.
 *
 * One home: Python mirrors this exactly in focuslake/events.py (EVENT_DTYPE,
 * HEADER_DTYPE, FOOTER_DTYPE). tests/test_native.py proves both directions.
 *
 * Seed 003's struct summed to 72 bytes while asserting 64 (its `padding` and
 * `reserved` fields pushed it past one cache line). This one drops both and is
 * exactly 64 bytes. All integers are little-endian.
 *
 * Segment file layout:
 *   SegmentHeader (64 bytes) | Event[record_count] (64 bytes each) | SegmentFooter (16 bytes)
 * The footer carries the record count and the CRC-32 (IEEE 802.3, as zlib's crc32)
 * of the record bytes. A file whose header, footer, count or checksum does not
 * match is quarantined whole by the ingest.
 */
#ifndef FOCUS_EVENT_H
#define FOCUS_EVENT_H

#include <stdint.h>
#include <assert.h>

#define FOCUS_SEGMENT_MAGIC   "FOCUSEVT"   /* 8 bytes, no terminator stored */
#define FOCUS_FOOTER_MAGIC    "FEND"       /* 4 bytes */
#define FOCUS_FORMAT_VERSION  1
#define FOCUS_ID_LEN          20           /* user_id / device_id, NUL-padded ASCII */

/* SegmentHeader.flags */
#define FOCUS_FLAG_KEY_IDENTITY_CONSENT 0x1u  /* key codes may be non-zero */

typedef enum {
    EV_UNKNOWN = 0,
    EV_KEY_PRESS = 1,
    EV_KEY_RELEASE = 2,
    EV_MOUSE_MOVE = 3,
    EV_MOUSE_CLICK = 4,
    EV_MOUSE_WHEEL = 5,
    EV_WINDOW_FOCUS_CHANGE = 6,
    EV_WINDOW_TITLE_CHANGE = 7,
    EV_WINDOW_MINIMIZE = 8,
    EV_WINDOW_MAXIMIZE = 9,
    EV_IDLE_START = 10,
    EV_IDLE_END = 11,
    EV_SCREEN_LOCK = 12,
    EV_SCREEN_UNLOCK = 13,
    EV_RESERVED_14 = 14,
    EV_RESERVED_15 = 15
} EventType;

#pragma pack(push, 1)
typedef struct {
    uint64_t timestamp_us;      /* 0:  microseconds since the Unix epoch, UTC */
    uint32_t event_type;        /* 8:  EventType */
    uint32_t process_id;        /* 12 */
    char     app_name[32];      /* 16: NUL-padded UTF-8 */
    uint32_t window_handle;     /* 48 */
    union {                     /* 52: 12 bytes, meaning by event_type */
        struct { uint32_t virtual_key_code, scan_code, flags; } key;   /* codes 0 without consent */
        struct { int32_t x, y; uint32_t speed_pps; } mouse_move;
        struct { int32_t x, y; uint32_t button; } mouse_click;         /* 1 left, 2 right, 3 middle */
        struct { int32_t dx, dy; uint32_t reserved; } mouse_wheel;
        struct { uint32_t old_window, new_window, category_hint; } window_switch;
        struct { uint32_t idle_duration_ms, reserved[2]; } idle;
        uint8_t raw_data[12];
    } data;
} Event;

typedef struct {
    char     magic[8];                 /* 0:  FOCUS_SEGMENT_MAGIC */
    uint16_t version;                  /* 8:  FOCUS_FORMAT_VERSION */
    uint16_t record_size;              /* 10: sizeof(Event) == 64 */
    uint32_t flags;                    /* 12: FOCUS_FLAG_* */
    uint64_t created_us;               /* 16: segment creation time, UTC microseconds */
    char     user_id[FOCUS_ID_LEN];    /* 24 */
    char     device_id[FOCUS_ID_LEN];  /* 44 */
} SegmentHeader;                       /* 64 */

typedef struct {
    char     magic[4];                 /* 0: FOCUS_FOOTER_MAGIC */
    uint32_t crc32;                    /* 4: CRC-32 of all record bytes */
    uint64_t record_count;             /* 8 */
} SegmentFooter;                       /* 16 */
#pragma pack(pop)

static_assert(sizeof(Event) == 64, "Event must be exactly 64 bytes (one cache line)");
static_assert(sizeof(SegmentHeader) == 64, "SegmentHeader must be 64 bytes");
static_assert(sizeof(SegmentFooter) == 16, "SegmentFooter must be 16 bytes");

#endif /* FOCUS_EVENT_H */
