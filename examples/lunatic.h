/* The lunatic host functions the C examples use (HOSTAPI.md, Appendix A).
 *
 * Every import keeps lunatic's exact Wasm signature: pointers and lengths are
 * i32, ids and tags i64. Link against nothing: lunatrio provides them. */
#ifndef LUNATIC_H
#define LUNATIC_H

#include <stdint.h>
#include <string.h>

#define LUNATIC_IMPORT(ns, name) __attribute__((import_module(ns), import_name(name)))

/* lunatic::process */
LUNATIC_IMPORT("lunatic::process", "spawn")
int32_t lunatic_spawn(int64_t link, int64_t config_id, int64_t module_id,
                      const char *func, uint32_t func_len,
                      const uint8_t *params, uint32_t params_len, uint64_t *id);
LUNATIC_IMPORT("lunatic::process", "sleep_ms") void lunatic_sleep_ms(uint64_t ms);
LUNATIC_IMPORT("lunatic::process", "die_when_link_dies") void lunatic_die_when_link_dies(uint32_t die);
LUNATIC_IMPORT("lunatic::process", "process_id") uint64_t lunatic_process_id(void);
LUNATIC_IMPORT("lunatic::process", "monitor") void lunatic_monitor(uint64_t pid);
LUNATIC_IMPORT("lunatic::process", "kill") void lunatic_kill(uint64_t pid);

/* lunatic::message */
LUNATIC_IMPORT("lunatic::message", "create_data") void lunatic_create_data(int64_t tag, uint64_t capacity);
LUNATIC_IMPORT("lunatic::message", "write_data") uint32_t lunatic_write_data(const void *data, uint32_t len);
LUNATIC_IMPORT("lunatic::message", "read_data") uint32_t lunatic_read_data(void *data, uint32_t len);
LUNATIC_IMPORT("lunatic::message", "send") uint32_t lunatic_send(uint64_t pid);
LUNATIC_IMPORT("lunatic::message", "receive")
uint32_t lunatic_receive(const int64_t *tags, uint32_t tags_len, uint64_t timeout_ms);
LUNATIC_IMPORT("lunatic::message", "get_tag") int64_t lunatic_get_tag(void);
LUNATIC_IMPORT("lunatic::message", "get_process_id") uint64_t lunatic_get_process_id(void);

#define LUNATIC_NO_TIMEOUT UINT64_MAX
#define LUNATIC_DATA 0
#define LUNATIC_LINK_DIED 1
#define LUNATIC_PROCESS_DIED 2
#define LUNATIC_TIMEOUT 9027

/* Spawn `func` from this module with this config, passing one i32; link with
 * `link_tag` (0: no link). Returns the child's id, or 0 if the spawn failed. */
static inline uint64_t spawn_i32(const char *func, int32_t arg, int64_t link_tag) {
    uint8_t params[17] = {0x7F};
    int64_t wide = arg; /* sign-extended to 128 bits */
    memcpy(params + 1, &wide, 8);
    memset(params + 9, arg < 0 ? 0xFF : 0, 8);
    uint64_t id = 0;
    if (lunatic_spawn(link_tag, -1, -1, func, (uint32_t)strlen(func), params, 17, &id) != 0)
        return 0;
    return id;
}

#endif
