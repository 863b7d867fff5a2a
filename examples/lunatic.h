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

LUNATIC_IMPORT("lunatic::message", "data_size") uint64_t lunatic_data_size(void);
LUNATIC_IMPORT("lunatic::message", "push_tcp_stream") uint64_t lunatic_push_tcp_stream(uint64_t stream);
LUNATIC_IMPORT("lunatic::message", "take_tcp_stream") uint64_t lunatic_take_tcp_stream(uint64_t index);

/* lunatic::error */
LUNATIC_IMPORT("lunatic::error", "string_size") uint32_t lunatic_error_string_size(uint64_t id);
LUNATIC_IMPORT("lunatic::error", "to_string") void lunatic_error_to_string(uint64_t id, char *out);
LUNATIC_IMPORT("lunatic::error", "drop") void lunatic_error_drop(uint64_t id);

/* lunatic::networking (TCP). Calls that can fail return 0 on success, or 1
 * with an error id written where the result would have gone. */
LUNATIC_IMPORT("lunatic::networking", "tcp_bind")
uint32_t lunatic_tcp_bind(uint32_t addr_type, const uint8_t *addr, uint32_t port,
                          uint32_t flow_info, uint32_t scope_id, uint64_t *id);
LUNATIC_IMPORT("lunatic::networking", "tcp_local_addr")
uint32_t lunatic_tcp_local_addr(uint64_t listener, uint64_t *dns_iterator);
LUNATIC_IMPORT("lunatic::networking", "resolve_next")
uint32_t lunatic_resolve_next(uint64_t dns_iterator, uint32_t *addr_type, uint8_t *addr,
                              uint16_t *port, uint32_t *flow_info, uint32_t *scope_id);
LUNATIC_IMPORT("lunatic::networking", "drop_dns_iterator") void lunatic_drop_dns_iterator(uint64_t id);
LUNATIC_IMPORT("lunatic::networking", "tcp_accept")
uint32_t lunatic_tcp_accept(uint64_t listener, uint64_t *stream, uint64_t *peer_dns_iterator);
LUNATIC_IMPORT("lunatic::networking", "tcp_read")
uint32_t lunatic_tcp_read(uint64_t stream, void *buf, uint32_t len, uint64_t *n_or_error);
LUNATIC_IMPORT("lunatic::networking", "tcp_write_vectored")
uint32_t lunatic_tcp_write_vectored(uint64_t stream, const uint32_t *iovecs, uint32_t count,
                                    uint64_t *n_or_error);
LUNATIC_IMPORT("lunatic::networking", "drop_tcp_stream") void lunatic_drop_tcp_stream(uint64_t id);

/* lunatic::sqlite. Results the host returns in guest memory come from the
 * guest's own `lunatic_alloc` export. */
LUNATIC_IMPORT("lunatic::sqlite", "open")
uint64_t lunatic_sqlite_open(const char *path, uint32_t len, uint64_t *id_or_error);
LUNATIC_IMPORT("lunatic::sqlite", "execute")
uint32_t lunatic_sqlite_execute(uint64_t conn, const char *sql, uint32_t len);
LUNATIC_IMPORT("lunatic::sqlite", "query_prepare")
uint64_t lunatic_sqlite_prepare(uint64_t conn, const char *sql, uint32_t len);
LUNATIC_IMPORT("lunatic::sqlite", "bind_value")
void lunatic_sqlite_bind(uint64_t stmt, const uint8_t *bincode, uint32_t len);
LUNATIC_IMPORT("lunatic::sqlite", "sqlite3_step") uint32_t lunatic_sqlite_step(uint64_t stmt);
LUNATIC_IMPORT("lunatic::sqlite", "statement_reset") void lunatic_sqlite_reset(uint64_t stmt);
LUNATIC_IMPORT("lunatic::sqlite", "read_column")
uint8_t *lunatic_sqlite_read_column(uint64_t stmt, uint32_t col, uint32_t *len);
LUNATIC_IMPORT("lunatic::sqlite", "sqlite3_changes") uint32_t lunatic_sqlite_changes(uint64_t conn);
LUNATIC_IMPORT("lunatic::sqlite", "sqlite3_finalize") void lunatic_sqlite_finalize(uint64_t stmt);

#define LUNATIC_SQLITE_ROW 100
#define LUNATIC_SQLITE_DONE 101

#define LUNATIC_NO_TIMEOUT UINT64_MAX
#define LUNATIC_DATA 0
#define LUNATIC_LINK_DIED 1
#define LUNATIC_PROCESS_DIED 2
#define LUNATIC_TIMEOUT 9027

#define LUNATIC_TYPE_I32 0x7F
#define LUNATIC_TYPE_I64 0x7E

/* Write one 17-byte spawn parameter: its Wasm type, then the value as a
 * little-endian 128-bit integer (sign-extended). */
static inline void spawn_param(uint8_t *out, uint8_t type, int64_t value) {
    out[0] = type;
    memcpy(out + 1, &value, 8);
    memset(out + 9, value < 0 ? 0xFF : 0, 8);
}

/* Spawn `func` from this module with this config and `n` parameters written
 * by spawn_param; link with `link_tag` (0: no link). Returns the child's id,
 * or 0 if the spawn failed. */
static inline uint64_t spawn_params(const char *func, const uint8_t *params, uint32_t n,
                                    int64_t link_tag) {
    uint64_t id = 0;
    if (lunatic_spawn(link_tag, -1, -1, func, (uint32_t)strlen(func), params, 17 * n, &id) != 0)
        return 0;
    return id;
}

/* Spawn `func(arg)` (an i32); see spawn_params. */
static inline uint64_t spawn_i32(const char *func, int32_t arg, int64_t link_tag) {
    uint8_t params[17];
    spawn_param(params, LUNATIC_TYPE_I32, arg);
    return spawn_params(func, params, 1, link_tag);
}

#endif
