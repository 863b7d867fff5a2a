/* lunatic_rs.h: the guest side of lunatic-rs 0.14.1, rendered in C.
 *
 * lunatrio must run real lunatic-rs programs unchanged. This header lets C
 * guests (compiled to wasm32-wasi with `python -m ziglang cc`) talk to the
 * host exactly as lunatic-rs does: the same host calls, in the same order,
 * with the same tags and the same message bytes. Every part below names the
 * section of HOSTAPI.md (the specification of lunatic's host API) it
 * follows; read them side by side.
 *
 *   1. Host imports ................................ Appendix A
 *   2. Exports every lunatic-rs module defines ...... 5.1, 2.13, 5.3, 5.10
 *   3. Panics ....................................... 5.1, 1.13 (+ correction 1)
 *   4. Tags ......................................... 5.5
 *   5. Bincode writer and reader .................... 5.4, 4.2, correction 6
 *   6. Processes, sending, receiving ................ 5.6, 4.6
 *   7. Spawning through the trampoline .............. 5.3, 1.3, B.1
 *   8. catch_panic .................................. 5.10, 2.7
 *   9. Registry names ............................... 5.9, 2.4
 *  10. Timers ....................................... 5.6, 2.5
 *  11. AbstractProcess .............................. 5.7, B.4, B.5
 *  12. Supervisor ................................... 5.8
 *  13. Test exports ................................. 1.13, 5.2
 *
 * Rust generics become C "descriptors": a capture type is declared with
 * LR_CAPTURE, an AbstractProcess with LR_ABSTRACT_PROCESS, a supervisor with
 * LR_SUPERVISOR. Each of these macros defines the per-type functions whose
 * function-table indices lunatic-rs passes through the host (the monomorphised
 * `type_helper_wrapper::<C, M, S>` and `lifecycles::entry::<T>`).
 *
 * In wasm32, a C function pointer cast to an integer IS the function's index
 * in the module's table, just like a Rust `fn` cast with `as usize as i32`.
 *
 * The header is meant to be included by exactly one translation unit per
 * module: it defines the module's exports and its Tag counter. A second
 * translation unit of the same module must define LUNATIC_RS_NO_DEFINITIONS
 * before including it.
 *
 * Helper names: `lr_...` is this library's API, `lr__...` is internal, and
 * `lunatic_<namespace>_<function>` is a raw host import.
 */
#ifndef LUNATIC_RS_H
#define LUNATIC_RS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ========================================================================
 * 1. Host imports (HOSTAPI.md Appendix A)
 *
 * Each declaration keeps the exact Wasm signature of Appendix A: in wasm32,
 * pointers, size_t and 32-bit integers are i32; 64-bit integers are i64.
 * Like a lunatic-rs module, the compiled module imports only the functions
 * it actually calls (5.1): the linker drops unused declarations.
 * ====================================================================== */

#define LR_IMPORT(ns, fn) __attribute__((import_module(ns), import_name(fn)))

/* lunatic::message (2.2) */
LR_IMPORT("lunatic::message", "create_data")
void lunatic_message_create_data(int64_t tag, uint64_t capacity);
LR_IMPORT("lunatic::message", "write_data")
size_t lunatic_message_write_data(const void *data, size_t len);
LR_IMPORT("lunatic::message", "read_data")
size_t lunatic_message_read_data(void *data, size_t len);
LR_IMPORT("lunatic::message", "seek_data")
void lunatic_message_seek_data(uint64_t position);
LR_IMPORT("lunatic::message", "get_tag")
int64_t lunatic_message_get_tag(void);
LR_IMPORT("lunatic::message", "get_process_id")
uint64_t lunatic_message_get_process_id(void);
LR_IMPORT("lunatic::message", "data_size")
uint64_t lunatic_message_data_size(void);
LR_IMPORT("lunatic::message", "send")
uint32_t lunatic_message_send(uint64_t process_id);
LR_IMPORT("lunatic::message", "send_receive_skip_search")
uint32_t lunatic_message_send_receive_skip_search(uint64_t process_id, int64_t wait_tag,
                                                  uint64_t timeout_ms);
LR_IMPORT("lunatic::message", "receive")
uint32_t lunatic_message_receive(const int64_t *tags, size_t tags_len, uint64_t timeout_ms);

/* lunatic::process (2.3) */
LR_IMPORT("lunatic::process", "spawn")
uint32_t lunatic_process_spawn(int64_t link, int64_t config_id, int64_t module_id,
                               const char *func, size_t func_len, const uint8_t *params,
                               size_t params_len, uint64_t *id);
LR_IMPORT("lunatic::process", "get_or_spawn")
uint32_t lunatic_process_get_or_spawn(const char *name, size_t name_len, int64_t link,
                                      int64_t config_id, int64_t module_id, const char *func,
                                      size_t func_len, const uint8_t *params, size_t params_len,
                                      uint64_t *node_id, uint64_t *id);
LR_IMPORT("lunatic::process", "sleep_ms")
void lunatic_process_sleep_ms(uint64_t ms);
LR_IMPORT("lunatic::process", "die_when_link_dies")
void lunatic_process_die_when_link_dies(uint32_t die);
LR_IMPORT("lunatic::process", "process_id")
uint64_t lunatic_process_process_id(void);
LR_IMPORT("lunatic::process", "link")
void lunatic_process_link(int64_t tag, uint64_t process_id);
LR_IMPORT("lunatic::process", "unlink")
void lunatic_process_unlink(uint64_t process_id);
LR_IMPORT("lunatic::process", "monitor")
void lunatic_process_monitor(uint64_t process_id);
LR_IMPORT("lunatic::process", "kill")
void lunatic_process_kill(uint64_t process_id);
LR_IMPORT("lunatic::process", "exists")
uint32_t lunatic_process_exists(uint64_t process_id);

/* lunatic::registry (2.4) */
LR_IMPORT("lunatic::registry", "put")
void lunatic_registry_put(const char *name, size_t name_len, uint64_t node_id,
                          uint64_t process_id);
LR_IMPORT("lunatic::registry", "get")
uint32_t lunatic_registry_get(const char *name, size_t name_len, uint64_t *node_id,
                              uint64_t *process_id);
LR_IMPORT("lunatic::registry", "remove")
void lunatic_registry_remove(const char *name, size_t name_len);

/* lunatic::timer (2.5) */
LR_IMPORT("lunatic::timer", "send_after")
uint64_t lunatic_timer_send_after(uint64_t process_id, uint64_t delay_ms);
LR_IMPORT("lunatic::timer", "cancel_timer")
uint32_t lunatic_timer_cancel_timer(uint64_t timer_id);

/* lunatic::trap (2.7) */
LR_IMPORT("lunatic::trap", "catch")
int32_t lunatic_trap_catch(int32_t function, int32_t argument);

/* lunatic::distributed (2.9): lunatic-rs asks for the node id before every
 * send to decide between a local and a remote send. */
LR_IMPORT("lunatic::distributed", "node_id")
uint64_t lunatic_distributed_node_id(void);
LR_IMPORT("lunatic::distributed", "send")
uint32_t lunatic_distributed_send(uint64_t node_id, uint64_t process_id);
LR_IMPORT("lunatic::distributed", "send_receive_skip_search")
uint32_t lunatic_distributed_send_receive_skip_search(uint64_t node_id, uint64_t process_id,
                                                      int64_t wait_tag, uint64_t timeout_ms);

/* Return codes of receive (4.6) and of timed waits (0.4). */
#define LR_DATA 0u
#define LR_LINK_DIED 1u
#define LR_PROCESS_DIED 2u
#define LR_TIMEOUT 9027u
/* `None` as a timeout: u64::MAX (5.5). */
#define LR_NO_TIMEOUT UINT64_MAX

/* ========================================================================
 * 2. Exports every lunatic-rs module defines (5.1, 2.13), and module state
 * ====================================================================== */

/* The trampoline's export name: the `lunatic` crate's version is part of it. */
#define LR_SPAWN_BY_INDEX "_lunatic_spawn_by_index_0.14.1"
#define LR_SPAWN_BY_INDEX_LEN 30u

extern int64_t lr__tag_counter;    /* Tag::new()'s per-process counter (5.5) */
extern const char *lr__thread_name; /* the name panics print */

#ifndef LUNATIC_RS_NO_DEFINITIONS
/* Tag counter: starts at 128, so the first Tag::new() of a process is 129.
 * Each process has its own copy, since each process has its own memory. */
int64_t lr__tag_counter = 128;
/* Rust names the thread of `main` "main"; other entry points run unnamed. */
const char *lr__thread_name = "<unnamed>";

/* lunatic_alloc(len) -> ptr (2.13, 5.11): the host calls back into the guest
 * to get `len` bytes it then owns. Like lunatic-rs (a leaked Vec), a request
 * for 0 bytes gets a dangling, non-zero pointer. */
__attribute__((export_name("lunatic_alloc"))) uint8_t *lr__lunatic_alloc(uint32_t len) {
    if (len == 0)
        return (uint8_t *)1;
    return malloc(len);
}

/* _lunatic_catch_trap(function, pointer) -> i32 (5.10, 2.7): the host's
 * nested call made by lunatic::trap::catch. It calls table entry `function`
 * with `pointer` (a call_indirect) and returns what that returns. */
__attribute__((export_name("_lunatic_catch_trap"))) int32_t lr__catch_trap(int32_t function,
                                                                           int32_t pointer) {
    int32_t (*re_entry)(int32_t) = (int32_t (*)(int32_t))(uintptr_t)function;
    return re_entry(pointer);
}

/* _lunatic_spawn_by_index_0.14.1(f, a) (5.3 step 3): the entry point of every
 * process spawned from a function. It calls table entry `f` (a
 * type_helper_wrapper) with `a` (the index of the user's entry function). */
__attribute__((export_name(LR_SPAWN_BY_INDEX))) void lr__spawn_by_index(int32_t type_helper,
                                                                       int32_t function) {
    void (*wrapper)(int32_t) = (void (*)(int32_t))(uintptr_t)type_helper;
    wrapper(function);
}
#endif /* LUNATIC_RS_NO_DEFINITIONS */

/* The table index of a function: its pointer, as an i32 (5.3 step 1). */
#define LR_INDEX(fn) ((int32_t)(uintptr_t)(fn))

/* ========================================================================
 * 3. Panics (5.1, 1.13 and correction 1)
 *
 * lunatic-rs builds with panic=abort: the panic hook prints one message to
 * stderr, then the module executes `unreachable`, a trap (death reason
 * Failure). Rust before 1.73 prints
 *     thread '<name>' panicked at '<msg>', <file>:<line>:<col>
 * and Rust 1.73 and later print
 *     thread '<name>' panicked at <file>:<line>:<col>:
 *     <msg>
 * The test runner must recognise both. C has no column macro, but clang's
 * __builtin_COLUMN() gives the column of the macro's use.
 * ====================================================================== */

enum { LR_PANIC_BEFORE_1_73, LR_PANIC_SINCE_1_73 };

__attribute__((noreturn, format(printf, 5, 6))) static inline void
lr__panic(int style, const char *file, unsigned line, unsigned column, const char *format, ...) {
    char message[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    /* Rust's stdout is line-buffered: what was printed before is out already. */
    fflush(stdout);
    if (style == LR_PANIC_BEFORE_1_73)
        fprintf(stderr, "thread '%s' panicked at '%s', %s:%u:%u\n", lr__thread_name, message, file,
                line, column);
    else
        fprintf(stderr, "thread '%s' panicked at %s:%u:%u:\n%s\n", lr__thread_name, file, line,
                column, message);
    fputs("note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
          stderr);
    fflush(stderr);
    __builtin_trap(); /* `unreachable` */
}

/* panic!(...) as Rust before 1.73 reports it (what lunatic's runner matches). */
#define lr_panic(...)                                                                          \
    lr__panic(LR_PANIC_BEFORE_1_73, __FILE_NAME__, __LINE__, __builtin_COLUMN(), __VA_ARGS__)
/* panic!(...) as Rust 1.73 and later report it. */
#define lr_panic_since_1_73(...)                                                               \
    lr__panic(LR_PANIC_SINCE_1_73, __FILE_NAME__, __LINE__, __builtin_COLUMN(), __VA_ARGS__)

/* assert!(cond) and assert_eq!(left, right) for integers, with Rust's texts. */
#define lr_assert(cond)                                                                        \
    do {                                                                                       \
        if (!(cond))                                                                           \
            lr_panic("assertion failed: %s", #cond);                                           \
    } while (0)
#define lr_assert_eq(left, right)                                                              \
    do {                                                                                       \
        long long lr__l = (long long)(left), lr__r = (long long)(right);                       \
        if (lr__l != lr__r)                                                                    \
            lr_panic("assertion failed: `(left == right)`\n  left: `%lld`,\n right: `%lld`: %s", \
                     lr__l, lr__r, #left " == " #right);                                       \
    } while (0)

/* println!: Rust's stdout is a LineWriter, so each line is written at once
 * (and is not lost if the process traps afterwards). */
#define lr_println(...)                                                                        \
    do {                                                                                       \
        printf(__VA_ARGS__);                                                                   \
        putchar('\n');                                                                         \
        fflush(stdout);                                                                        \
    } while (0)

/* ========================================================================
 * 4. Tags (5.5)
 * ====================================================================== */

/* Tag::new(): a per-process counter starting at 128 (first value 129),
 * wrapping modulo 0xFF_FFFF_FFFF_FFFF so the top byte stays free. */
static inline int64_t lr_tag_new(void) {
    lr__tag_counter = (lr__tag_counter + 1) % 0xFFFFFFFFFFFFFFll;
    return lr__tag_counter;
}

/* Tag::special(n): 64..=128, reserved for applications. */
#define LR_TAG_SPECIAL(n) ((int64_t)(n))

/* The low 7 bytes of a tag; the top byte of an AbstractProcess tag carries
 * the handler number (5.7). */
#define LR_TAG_MASK 0x00FFFFFFFFFFFFFFll

/* ========================================================================
 * 5. Bincode 1.3, default configuration (5.4)
 *
 * Little-endian fixed-width integers, u64 length prefixes, u32 enum
 * variants, Option as a 1-byte tag. lunatic-rs streams into the scratch
 * message: one write_data call per primitive (B.2), and decodes with one
 * read_data call per primitive (looping until the value is complete, as
 * read_exact does). wasm32 is little-endian, so a value's bytes in memory
 * are its encoding.
 * ====================================================================== */

static inline void lr_ser_bytes(const void *data, size_t len) {
    if (len > 0) /* write_all of an empty slice writes nothing */
        lunatic_message_write_data(data, len);
}
static inline void lr_ser_u8(uint8_t v) { lr_ser_bytes(&v, 1); }
static inline void lr_ser_bool(bool v) { lr_ser_u8(v ? 1 : 0); }
static inline void lr_ser_u32(uint32_t v) { lr_ser_bytes(&v, 4); }
static inline void lr_ser_i32(int32_t v) { lr_ser_bytes(&v, 4); }
static inline void lr_ser_u64(uint64_t v) { lr_ser_bytes(&v, 8); }
static inline void lr_ser_i64(int64_t v) { lr_ser_bytes(&v, 8); }
/* An enum variant, including Result (Ok = 0, Err = 1). */
static inline void lr_ser_variant(uint32_t index) { lr_ser_u32(index); }
/* Option: 0 for None, 1 followed by the value for Some. */
static inline void lr_ser_option(bool some) { lr_ser_u8(some ? 1 : 0); }
/* String / &str: u64 byte length, then the bytes. */
static inline void lr_ser_str_len(const char *s, size_t len) {
    lr_ser_u64(len);
    lr_ser_bytes(s, len);
}
static inline void lr_ser_str(const char *s) { lr_ser_str_len(s, strlen(s)); }

/* A decoder over the scratch message. `failed` is set by the first short
 * read; later reads do nothing. `one_byte_reads` imitates the JSON
 * serializer's reader, which asks read_data for a single byte at a time
 * (correction 6), and lr_de_end then makes its final call, which returns 0. */
typedef struct {
    bool failed;
    bool one_byte_reads;
} lr_de;

static inline void lr_de_bytes(lr_de *de, void *out, size_t len) {
    uint8_t *p = out;
    while (len > 0 && !de->failed) {
        size_t got = lunatic_message_read_data(p, de->one_byte_reads ? 1 : len);
        if (got == 0) {
            de->failed = true; /* UnexpectedEof */
            return;
        }
        p += got;
        len -= got;
    }
}
static inline uint8_t lr_de_u8(lr_de *de) {
    uint8_t v = 0;
    lr_de_bytes(de, &v, 1);
    return v;
}
static inline bool lr_de_bool(lr_de *de) {
    uint8_t v = lr_de_u8(de);
    if (v > 1)
        de->failed = true;
    return v == 1;
}
static inline uint32_t lr_de_u32(lr_de *de) {
    uint32_t v = 0;
    lr_de_bytes(de, &v, 4);
    return v;
}
static inline int32_t lr_de_i32(lr_de *de) { return (int32_t)lr_de_u32(de); }
static inline uint64_t lr_de_u64(lr_de *de) {
    uint64_t v = 0;
    lr_de_bytes(de, &v, 8);
    return v;
}
static inline int64_t lr_de_i64(lr_de *de) { return (int64_t)lr_de_u64(de); }
static inline uint32_t lr_de_variant(lr_de *de) { return lr_de_u32(de); }
/* Option's tag: true for Some (the value follows). */
static inline bool lr_de_option(lr_de *de) { return lr_de_bool(de); }
/* A String, returned NUL-terminated in malloc'd memory (NULL on failure). */
static inline char *lr_de_string(lr_de *de, size_t *len_out) {
    uint64_t len = lr_de_u64(de);
    if (de->failed || len > (1u << 24)) {
        de->failed = true;
        return NULL;
    }
    char *s = malloc((size_t)len + 1);
    lr_de_bytes(de, s, (size_t)len);
    s[len] = '\0';
    if (len_out)
        *len_out = (size_t)len;
    return s;
}
/* The JSON reader's final call: nothing may follow the value. */
static inline void lr_de_end(lr_de *de) {
    uint8_t extra;
    if (de->one_byte_reads && !de->failed && lunatic_message_read_data(&extra, 1) != 0)
        de->failed = true; /* trailing characters */
}
/* decode().unwrap() */
static inline void lr_de_unwrap(const lr_de *de, const char *type_name) {
    if (de->failed)
        lr_panic("called `Result::unwrap()` on an `Err` value: DecodeError(\"cannot decode %s\")",
                 type_name);
}

/* ========================================================================
 * 6. Processes, sending and receiving (5.6, 4.6)
 * ====================================================================== */

/* Process<M, S>, ProcessRef<T>, ReturnAddress: (node_id, id); bincode
 * encodes them as two u64s, 16 bytes (5.4). */
typedef struct {
    uint64_t node_id;
    uint64_t id;
} lr_process;

static inline void lr_ser_process(lr_process p) {
    lr_ser_u64(p.node_id);
    lr_ser_u64(p.id);
}
static inline lr_process lr_de_process(lr_de *de) {
    lr_process p;
    p.node_id = lr_de_u64(de);
    p.id = lr_de_u64(de);
    return p;
}

/* host::node_id() */
static inline uint64_t lr_node_id(void) { return lunatic_distributed_node_id(); }

/* Process::this(): node_id(), then process_id(). */
static inline lr_process lr_process_this(void) {
    lr_process p;
    p.node_id = lr_node_id();
    p.id = lunatic_process_process_id();
    return p;
}

/* Sending a message is three steps, as in lunatic-rs's Process::send and
 * tag_send: create_data(tag, 0); encode the value with lr_ser_*; then
 * lr_message_send, which is host::send: a local send when the target's node
 * is this node (asked from the host every time), a distributed one otherwise.
 * Tag 0 (Tag::none()) is an untagged message. */
static inline void lr_message_new(int64_t tag) { lunatic_message_create_data(tag, 0); }

static inline void lr_message_send(lr_process to) {
    if (lr_node_id() == to.node_id)
        lunatic_message_send(to.id);
    else
        lunatic_distributed_send(to.node_id, to.id);
}

/* host::send_receive_skip_search: send the scratch message, then wait for a
 * reply tagged `wait_tag` that arrives after the call. */
static inline uint32_t lr_message_send_receive(lr_process to, int64_t wait_tag,
                                               uint64_t timeout_ms) {
    if (lr_node_id() == to.node_id)
        return lunatic_message_send_receive_skip_search(to.id, wait_tag, timeout_ms);
    return lunatic_distributed_send_receive_skip_search(to.node_id, to.id, wait_tag, timeout_ms);
}

/* The pointer Rust passes for an empty tag list: an empty Vec<i64>'s
 * dangling, aligned pointer (0.2). receive ignores it when the count is 0. */
#define LR_NO_TAGS ((const int64_t *)8)

/* Mailbox::receive() / tag_receive(tags): receive(tags, n, u64::MAX). A
 * mailbox that does not catch link failures accepts only data (result 0)
 * and panics on anything else. The message is left in the scratch area for
 * the lr_de_* decoders. */
static inline void lr_mailbox_tag_receive(const int64_t *tags, size_t count) {
    uint32_t r = lunatic_message_receive(count ? tags : LR_NO_TAGS, count, LR_NO_TIMEOUT);
    if (r == LR_LINK_DIED)
        lr_panic("LinkDied");
    if (r != LR_DATA)
        lr_panic("unknown message type");
}
static inline void lr_mailbox_receive(void) { lr_mailbox_tag_receive(NULL, 0); }

/* receive_timeout(d) / tag_receive_timeout: returns LR_DATA or LR_TIMEOUT;
 * `timeout_ms` is Duration::as_millis(), so sub-millisecond waits try once. */
static inline uint32_t lr_mailbox_tag_receive_timeout(const int64_t *tags, size_t count,
                                                      uint64_t timeout_ms) {
    uint32_t r = lunatic_message_receive(count ? tags : LR_NO_TAGS, count, timeout_ms);
    if (r == LR_LINK_DIED)
        lr_panic("LinkDied");
    return r;
}

/* Mailbox::catch_link_failure(): die_when_link_dies(0). From then on, the
 * catching receive below reports a 1 as LinkDied(Tag(get_tag())). */
static inline void lr_mailbox_catch_link_failure(void) { lunatic_process_die_when_link_dies(0); }

/* A catching (and monitoring) mailbox's receive: returns the kind (LR_DATA,
 * LR_LINK_DIED, LR_PROCESS_DIED or LR_TIMEOUT); for LinkDied `*tag` is the
 * link's tag, for ProcessDied `*pid` the id of the process that died. */
static inline uint32_t lr_mailbox_receive_signal(const int64_t *tags, size_t count,
                                                 uint64_t timeout_ms, int64_t *tag,
                                                 uint64_t *pid) {
    uint32_t r = lunatic_message_receive(count ? tags : LR_NO_TAGS, count, timeout_ms);
    if (r == LR_LINK_DIED && tag)
        *tag = lunatic_message_get_tag();
    if (r == LR_PROCESS_DIED && pid)
        *pid = lunatic_message_get_process_id();
    return r;
}

/* process.link() uses tag 0; kill, is_alive and monitor map one to one. */
static inline void lr_process_link(lr_process p) { lunatic_process_link(0, p.id); }
static inline void lr_process_kill(lr_process p) { lunatic_process_kill(p.id); }
static inline void lr_mailbox_monitor(lr_process p) { lunatic_process_monitor(p.id); }
static inline bool lr_process_is_alive(lr_process p) {
    if (p.node_id != lr_node_id())
        lr_panic("is_alive() can only be used with local processes");
    return lunatic_process_exists(p.id) != 0;
}
/* lunatic::sleep(d) */
static inline void lr_sleep_ms(uint64_t ms) { lunatic_process_sleep_ms(ms); }

/* ========================================================================
 * 7. Spawning through the trampoline (5.3, 1.3, B.1)
 *
 * Process::spawn(capture, entry) and its variants:
 *   1. node = host::node_id();
 *   2. params = [I32(index of type_helper_wrapper::<C, M, S>),
 *                I32(index of entry)], 17 bytes each: 0x7F, then the i32
 *      sign-extended to 128 bits, little-endian;
 *   3. spawn(link, config_id (-1: inherit), module_id = -1,
 *            "_lunatic_spawn_by_index_0.14.1", 30, params, 34, &id),
 *      or get_or_spawn(name, ...) for a named spawn;
 *   4. if C is not zero-sized, send the capture at once as an untagged
 *      message: create_data(0, 0), encode, host::send. It is the child's
 *      first message.
 * In the child, the trampoline calls the wrapper, which does an unfiltered,
 * blocking receive, decodes the capture and calls the entry with it.
 * ====================================================================== */

typedef void (*lr_type_helper_wrapper)(int32_t entry_index);
typedef void (*lr_encode_fn)(const void *value);

/* One 17-byte parameter record holding an i32 (1.3 step 8). */
static inline void lr__param_i32(uint8_t record[17], int32_t value) {
    int64_t low = value; /* sign-extended */
    record[0] = 0x7F;
    memcpy(record + 1, &low, 8);
    memset(record + 9, value < 0 ? 0xFF : 0x00, 8);
}

/* The 34 parameter bytes of a spawn through the trampoline. */
static inline void lr_encode_spawn_params(uint8_t params[34], int32_t type_helper,
                                          int32_t entry) {
    lr__param_i32(params, type_helper);
    lr__param_i32(params + 17, entry);
}

/* How to spawn: `link` is the link tag (0: no link), `config_id` -1 inherits
 * the caller's config, `name` (a full registry key, 5.9) makes it a
 * get_or_spawn. */
typedef struct {
    int64_t link;
    int64_t config_id;
    const char *name;
} lr_spawn_opts;

#define LR_SPAWN_PLAIN ((lr_spawn_opts){.link = 0, .config_id = -1, .name = NULL})

enum { LR_SPAWNED = 0, LR_SPAWN_FAILED = 1, LR_NAME_ALREADY_REGISTERED = 2 };

/* The core of every spawn (host::spawn plus the capture hand-over). Returns
 * 0 with the child in *child, 2 (get_or_spawn only) with the registered
 * process in *child, or 1 with the error id in child->id. `encode_capture`
 * NULL means a zero-sized capture: nothing is sent. */
static inline uint32_t lr_spawn_by_index(const lr_spawn_opts *opts,
                                         lr_type_helper_wrapper type_helper, int32_t entry,
                                         lr_encode_fn encode_capture, const void *capture,
                                         lr_process *child) {
    uint64_t node = lr_node_id();
    uint8_t params[34];
    lr_encode_spawn_params(params, LR_INDEX(type_helper), entry);
    uint64_t id = 0, registered_node = 0;
    uint32_t result;
    if (opts->name)
        result = lunatic_process_get_or_spawn(opts->name, strlen(opts->name), opts->link,
                                              opts->config_id, -1, LR_SPAWN_BY_INDEX,
                                              LR_SPAWN_BY_INDEX_LEN, params, sizeof params,
                                              &registered_node, &id);
    else
        result = lunatic_process_spawn(opts->link, opts->config_id, -1, LR_SPAWN_BY_INDEX,
                                       LR_SPAWN_BY_INDEX_LEN, params, sizeof params, &id);
    child->node_id = result == LR_NAME_ALREADY_REGISTERED ? registered_node : node;
    child->id = id;
    if (result == LR_SPAWNED && encode_capture) {
        lr_message_new(0);
        encode_capture(capture);
        lr_message_send(*child);
    }
    return result;
}

/* The plain spawn functions unwrap the result. */
static inline lr_process lr__spawn_unwrap(uint32_t result, lr_process child) {
    if (result != LR_SPAWNED)
        lr_panic("Failed to spawn a process: LunaticError::Error(%llu)",
                 (unsigned long long)child.id);
    return child;
}

/* LR_CAPTURE(Cap, CType, encode, decode) declares a capture type:
 *   void encode(const CType *value);         writes it with lr_ser_*
 *   void decode(lr_de *de, CType *value);    reads it with lr_de_*
 * and defines, for entry functions `void entry(CType *capture)`:
 *   Cap_type_helper_wrapper   the child-side wrapper (its table index is
 *                             the first spawn parameter)
 *   Cap_spawn(entry, capture)               Process::spawn
 *   Cap_spawn_link(entry, capture, &tag)    Process::spawn_link (tag = Tag::new())
 *   Cap_spawn_link_tag(tag, entry, capture) Process::spawn_link_tag
 *   Cap_spawn_opts(&opts, entry, capture, &child) -> 0/1/2, any variant */
#define LR_CAPTURE(Cap, CType, encode, decode)                                                 \
    __attribute__((unused)) static void Cap##_encode_capture(const void *value) {              \
        encode((const CType *)value);                                                          \
    }                                                                                          \
    __attribute__((unused)) static void Cap##_type_helper_wrapper(int32_t entry_index) {       \
        CType capture;                                                                         \
        memset(&capture, 0, sizeof capture);                                                   \
        lr_mailbox_receive();                                                                  \
        lr_de de = {0};                                                                        \
        decode(&de, &capture);                                                                 \
        lr_de_unwrap(&de, #CType);                                                             \
        ((void (*)(CType *))(uintptr_t)entry_index)(&capture);                                 \
    }                                                                                          \
    __attribute__((unused)) static inline uint32_t Cap##_spawn_opts(                           \
        const lr_spawn_opts *opts, void (*entry)(CType *), CType capture, lr_process *child) { \
        return lr_spawn_by_index(opts, Cap##_type_helper_wrapper, LR_INDEX(entry),             \
                                 Cap##_encode_capture, &capture, child);                       \
    }                                                                                          \
    __attribute__((unused)) static inline lr_process Cap##_spawn(void (*entry)(CType *),       \
                                                                 CType capture) {              \
        lr_process child;                                                                      \
        return lr__spawn_unwrap(Cap##_spawn_opts(&LR_SPAWN_PLAIN, entry, capture, &child),     \
                                child);                                                        \
    }                                                                                          \
    __attribute__((unused)) static inline lr_process Cap##_spawn_link_tag(                     \
        int64_t tag, void (*entry)(CType *), CType capture) {                                  \
        lr_spawn_opts opts = {.link = tag, .config_id = -1, .name = NULL};                     \
        lr_process child;                                                                      \
        return lr__spawn_unwrap(Cap##_spawn_opts(&opts, entry, capture, &child), child);       \
    }                                                                                          \
    __attribute__((unused)) static inline lr_process Cap##_spawn_link(                         \
        void (*entry)(CType *), CType capture, int64_t *tag_out) {                             \
        int64_t tag = lr_tag_new();                                                            \
        if (tag_out)                                                                           \
            *tag_out = tag;                                                                    \
        return Cap##_spawn_link_tag(tag, entry, capture);                                      \
    }

/* A zero-sized capture, `()`: the wrapper calls `void entry(void)` without
 * receiving anything, and the parent sends nothing (5.3 step 4). */
__attribute__((unused)) static void lr_unit_type_helper_wrapper(int32_t entry_index) {
    ((void (*)(void))(uintptr_t)entry_index)();
}
static inline uint32_t lr_unit_spawn_opts(const lr_spawn_opts *opts, void (*entry)(void),
                                          lr_process *child) {
    return lr_spawn_by_index(opts, lr_unit_type_helper_wrapper, LR_INDEX(entry), NULL, NULL,
                             child);
}
static inline lr_process lr_unit_spawn(void (*entry)(void)) {
    lr_process child;
    return lr__spawn_unwrap(lr_unit_spawn_opts(&LR_SPAWN_PLAIN, entry, &child), child);
}
static inline lr_process lr_unit_spawn_link_tag(int64_t tag, void (*entry)(void)) {
    lr_spawn_opts opts = {.link = tag, .config_id = -1, .name = NULL};
    lr_process child;
    return lr__spawn_unwrap(lr_unit_spawn_opts(&opts, entry, &child), child);
}
static inline lr_process lr_unit_spawn_link(void (*entry)(void), int64_t *tag_out) {
    int64_t tag = lr_tag_new();
    if (tag_out)
        *tag_out = tag;
    return lr_unit_spawn_link_tag(tag, entry);
}

/* ========================================================================
 * 8. catch_panic (5.10, 2.7)
 *
 * The closure is boxed and lunatic::trap::catch(index of re_entry, box) is
 * called. The host calls the export _lunatic_catch_trap(re_entry, box),
 * which calls re_entry(box): it runs the closure, boxes the result and
 * returns the result box's address, never 0 (a zero-sized result still gets
 * a non-null box). A trap inside ends the nested call and catch returns 0:
 * Err(Panicked). Memory allocated by a panicking closure is leaked.
 *
 * A C closure is a function and its environment:
 *     void fn(void *env, void *result);   writes `result_size` bytes
 * ====================================================================== */

typedef void (*lr_closure_fn)(void *env, void *result);

typedef struct {
    lr_closure_fn fn;
    void *env;
    size_t result_size;
} lr__boxed_closure;

/* re_entry::<R, F>(pointer) -> usize */
__attribute__((unused)) static int32_t lr__re_entry(int32_t pointer) {
    lr__boxed_closure *boxed = (lr__boxed_closure *)(uintptr_t)pointer;
    lr__boxed_closure closure = *boxed;
    free(boxed); /* the FnOnce box is consumed by the call */
    void *result = malloc(closure.result_size ? closure.result_size : 1);
    closure.fn(closure.env, result);
    return (int32_t)(uintptr_t)result;
}

/* Returns true (Ok) with the closure's result copied to `result`, or false
 * (Err(Panicked)) if it trapped. */
static inline bool lr_catch_panic(lr_closure_fn fn, void *env, void *result, size_t result_size) {
    lr__boxed_closure *boxed = malloc(sizeof *boxed);
    boxed->fn = fn;
    boxed->env = env;
    boxed->result_size = result_size;
    int32_t raw = lunatic_trap_catch(LR_INDEX(lr__re_entry), LR_INDEX(boxed));
    if (raw == 0)
        return false;
    void *boxed_result = (void *)(uintptr_t)raw;
    if (result_size)
        memcpy(result, boxed_result, result_size);
    free(boxed_result);
    return true;
}

/* ========================================================================
 * 9. Registry names (5.9, 2.4)
 *
 *   Process::<M, S>::register(name) / lookup:  "<type M>/<type S>/Process/<name>"
 *   ProcessRef::<T>::register / lookup, T::start_as(name), supervisor
 *   children's names:                          "<type T>/<type T::Serializer>/ProcessRef/<name>"
 * where the types are std::any::type_name strings, e.g. "i32",
 * "alloc::string::String", "my_app::Counter", "lunatic::serializer::Bincode".
 * ====================================================================== */

#define LR_BINCODE "lunatic::serializer::Bincode"
#define LR_KEY_MAX 256

typedef enum { LR_KIND_PROCESS, LR_KIND_PROCESS_REF } lr_process_kind;

/* process_name::<M, S>(kind, name), written into `key` (LR_KEY_MAX bytes). */
static inline const char *lr_process_name(char *key, const char *type_m, const char *type_s,
                                          lr_process_kind kind, const char *name) {
    snprintf(key, LR_KEY_MAX, "%s/%s/%s/%s", type_m, type_s,
             kind == LR_KIND_PROCESS ? "Process" : "ProcessRef", name);
    return key;
}

static inline void lr_registry_put(const char *key, lr_process p) {
    lunatic_registry_put(key, strlen(key), p.node_id, p.id);
}
/* registry::get: true with the entry, false (result 1) when absent. */
static inline bool lr_registry_get(const char *key, lr_process *out) {
    uint64_t id = 0, node_id = 0;
    if (lunatic_registry_get(key, strlen(key), &node_id, &id) != 0)
        return false;
    out->node_id = node_id;
    out->id = id;
    return true;
}
static inline void lr_registry_remove(const char *key) {
    lunatic_registry_remove(key, strlen(key));
}

/* Process::<M, Bincode>::register(&name) and lookup(&name). */
static inline void lr_process_register(lr_process p, const char *type_m, const char *name) {
    char key[LR_KEY_MAX];
    lr_registry_put(lr_process_name(key, type_m, LR_BINCODE, LR_KIND_PROCESS, name), p);
}
static inline bool lr_process_lookup(const char *type_m, const char *name, lr_process *out) {
    char key[LR_KEY_MAX];
    return lr_registry_get(lr_process_name(key, type_m, LR_BINCODE, LR_KIND_PROCESS, name), out);
}

/* ========================================================================
 * 10. Timers (5.6, 2.5)
 *
 * process.send_after(m, d): create_data(0, 0) (lr_message_new), encode,
 * then lr_message_send_after, which takes the scratch message and returns
 * the timer id of the TimerRef. TimerRef::cancel() is cancel_timer(id) == 1.
 * ====================================================================== */

static inline uint64_t lr_message_send_after(lr_process to, uint64_t delay_ms) {
    return lunatic_timer_send_after(to.id, delay_ms);
}
static inline bool lr_timer_cancel(uint64_t timer_id) {
    return lunatic_timer_cancel_timer(timer_id) == 1;
}

/* ========================================================================
 * 11. AbstractProcess (5.7, B.4, B.5)
 *
 * An AbstractProcess type is an lr_ap_type descriptor made with
 * LR_ABSTRACT_PROCESS(Name, fields...). Its handlers are numbered from 1 in
 * the order of the `handlers` array, like the Handlers tuple. The tag of a
 * message to it is (h << 56) | Tag::new(), h being the handler number (32
 * for shutdown); the low 7 bytes are the reply tag.
 * ====================================================================== */

typedef struct lr_ap_type lr_ap_type;

/* DeferredResponse { tag, return_address }: whoever holds it answers with
 * lr_deferred_reply_begin + encode + lr_deferred_reply_send. */
typedef struct {
    int64_t tag;
    lr_process return_address;
} lr_deferred_response;

typedef enum { LR_MESSAGE, LR_REQUEST, LR_DEFERRED_REQUEST } lr_handler_kind;

/* One entry of the Handlers tuple. `decode` reads M (or R); `message_size`
 * and `response_size` size the buffers the loop allocates for them. */
typedef struct {
    lr_handler_kind kind;
    size_t message_size;
    size_t response_size;
    void (*decode)(lr_de *de, void *message);
    void (*on_message)(void *state, void *message);                        /* Message<M> */
    void (*on_request)(void *state, void *request, void *response);        /* Request<R> */
    void (*encode_response)(const void *response);                         /* Request<R> */
    void (*on_deferred)(void *state, void *request, lr_deferred_response); /* Deferred */
} lr_handler;

/* Config<AP>: what init receives. */
typedef struct {
    const lr_ap_type *type;
} lr_ap_config;

/* Config::die_if_link_dies(b): die_when_link_dies(b as u32). */
static inline void lr_ap_config_die_if_link_dies(const lr_ap_config *config, bool die) {
    (void)config;
    lunatic_process_die_when_link_dies(die ? 1 : 0);
}
/* Config::self_ref(): Process::this(). */
static inline lr_process lr_ap_config_self_ref(const lr_ap_config *config) {
    (void)config;
    return lr_process_this();
}

/* The capture of the lifecycle entry: (parent: Process, init_tag: Tag, arg). */
typedef struct {
    const lr_ap_type *type;
    lr_process parent;
    int64_t init_tag;
    void *arg;
} lr_ap_capture;

struct lr_ap_type {
    const char *type_name;       /* std::any::type_name::<T>() */
    const char *serializer_name; /* type_name::<T::Serializer>(); NULL: Bincode */
    size_t arg_size;
    size_t state_size;
    void (*encode_arg)(const void *arg); /* NULL: Arg = () */
    void (*decode_arg)(lr_de *de, void *arg);
    /* init(config, arg) -> Result<State, StartupError>: fills `state` and
     * returns NULL for Ok, or a text for Err(Custom(String)). It may panic:
     * the start then fails with InitPanicked. `impl` is for the type's own
     * use (the supervisor keeps its spec there). */
    const char *(*init)(const lr_ap_config *config, void *state, const void *arg);
    void (*terminate)(void *state);                      /* optional */
    void (*handle_link_death)(void *state, int64_t tag); /* optional */
    const lr_handler *handlers;
    size_t handler_count;
    const void *impl;
    /* Set by LR_ABSTRACT_PROCESS: type_helper_wrapper::<C, (), S> for this
     * type's capture, and lifecycles::entry::<T>. */
    lr_type_helper_wrapper type_helper_wrapper;
    void (*entry)(lr_ap_capture *capture);
};

static inline const char *lr__serializer(const lr_ap_type *t) {
    return t->serializer_name ? t->serializer_name : LR_BINCODE;
}

/* The registry key of a named T: "<type T>/<type S>/ProcessRef/<name>". */
static inline const char *lr_ap_name(char *key, const lr_ap_type *t, const char *name) {
    return lr_process_name(key, t->type_name, lr__serializer(t), LR_KIND_PROCESS_REF, name);
}

/* ProcessRef::<T>::lookup(&name) and register(&name). */
static inline bool lr_ap_lookup(const lr_ap_type *t, const char *name, lr_process *out) {
    char key[LR_KEY_MAX];
    return lr_registry_get(lr_ap_name(key, t, name), out);
}
static inline void lr_ap_register(const lr_ap_type *t, lr_process p, const char *name) {
    char key[LR_KEY_MAX];
    lr_registry_put(lr_ap_name(key, t, name), p);
}

/* ---- the child side: lifecycles::entry::<T> -------------------------------- */

static inline void lr__ap_encode_capture(const void *value) {
    const lr_ap_capture *c = value;
    lr_ser_process(c->parent);
    lr_ser_i64(c->init_tag);
    if (c->type->encode_arg)
        c->type->encode_arg(c->arg);
}

static inline void *lr__alloc(size_t size) { return calloc(1, size ? size : 1); }

/* The body of type_helper_wrapper once the capture is in the scratch area. */
static inline void lr_ap_type_helper_wrapper_received(const lr_ap_type *t, int32_t entry_index) {
    lr_ap_capture capture = {.type = t, .arg = lr__alloc(t->arg_size)};
    lr_de de = {0};
    capture.parent = lr_de_process(&de);
    capture.init_tag = lr_de_i64(&de);
    if (t->decode_arg)
        t->decode_arg(&de, capture.arg);
    lr_de_unwrap(&de, "(Process, Tag, Arg)");
    ((void (*)(lr_ap_capture *))(uintptr_t)entry_index)(&capture);
}

/* type_helper_wrapper: an unfiltered blocking receive, then decode. */
static inline void lr_ap_type_helper_wrapper(const lr_ap_type *t, int32_t entry_index) {
    lr_mailbox_receive();
    lr_ap_type_helper_wrapper_received(t, entry_index);
}

typedef struct {
    const lr_ap_type *type;
    void *state;
    const void *arg;
} lr__ap_init_env;

/* The closure `|| AP::init(config, arg)` run inside catch_panic. */
__attribute__((unused)) static void lr__ap_init_closure(void *env, void *result) {
    lr__ap_init_env *e = env;
    lr_ap_config config = {.type = e->type};
    const char *custom = e->type->init(&config, e->state, e->arg);
    memcpy(result, &custom, sizeof custom);
}

/* parent.tag_send(init_tag, Result<(), StartupError<T>>) (B.5). */
static inline void lr__ap_send_init_result(lr_process parent, int64_t init_tag, bool panicked,
                                           const char *custom) {
    lr_message_new(init_tag);
    if (panicked) {
        lr_ser_variant(1); /* Err */
        lr_ser_variant(0); /* StartupError::InitPanicked */
    } else if (custom) {
        lr_ser_variant(1); /* Err */
        lr_ser_variant(2); /* StartupError::Custom(e) */
        lr_ser_str(custom);
    } else {
        lr_ser_variant(0); /* Ok(()) */
    }
    lr_message_send(parent);
}

/* Handlers::handle(reply_tag, h, state) */
static inline void lr__ap_dispatch(const lr_ap_type *t, void *state, unsigned h,
                                   int64_t reply_tag) {
    if (h == 0) /* a late reply, an untagged message, a ProcessDied: ignored */
        return;
    if (h > t->handler_count || h > 16)
        lr_panic("internal error: entered unreachable code: AbstractProcess `%s` received "
                 "message with unknown message ID: %u.",
                 t->type_name, h);
    const lr_handler *handler = &t->handlers[h - 1];
    void *message = lr__alloc(handler->message_size);
    lr_de de = {0};
    if (handler->decode)
        handler->decode(&de, message);
    if (handler->kind == LR_MESSAGE) {
        lr_de_unwrap(&de, "message");
        handler->on_message(state, message);
    } else {
        /* RequestMessage(R, ReturnAddress) */
        lr_process return_address = lr_de_process(&de);
        lr_de_unwrap(&de, "RequestMessage");
        if (handler->kind == LR_REQUEST) {
            void *response = lr__alloc(handler->response_size);
            handler->on_request(state, message, response);
            /* ReturnAddress::send_response: tag_send(reply_tag, response) */
            lr_message_new(reply_tag);
            if (handler->encode_response)
                handler->encode_response(response);
            lr_message_send(return_address);
            free(response);
        } else {
            lr_deferred_response deferred = {.tag = reply_tag, .return_address = return_address};
            handler->on_deferred(state, message, deferred);
        }
    }
    free(message);
}

/* The message loop; returns the reply tag of the shutdown request. */
static inline int64_t lr__ap_loop(const lr_ap_type *t, void *state) {
    for (;;) {
        if (lunatic_message_receive(NULL, 0, LR_NO_TIMEOUT) == LR_LINK_DIED) {
            int64_t tag = lunatic_message_get_tag();
            if (t->handle_link_death)
                t->handle_link_death(state, tag);
            continue;
        }
        int64_t tag = lunatic_message_get_tag();
        int64_t reply_tag = tag & LR_TAG_MASK;
        unsigned h = (uint8_t)(tag >> 56);
        if (h == 32) /* SHUTDOWN_HANDLER */
            return reply_tag;
        lr__ap_dispatch(t, state, h, reply_tag);
    }
}

/* lifecycles::entry::<T>: init inside catch_panic, report to the parent,
 * serve until shutdown, reply `()` (zero bytes) to the shutdown. */
static inline void lr_ap_lifecycle(const lr_ap_type *t, lr_ap_capture *capture) {
    void *state = lr__alloc(t->state_size);
    lr__ap_init_env env = {.type = t, .state = state, .arg = capture->arg};
    const char *custom = NULL;
    if (!lr_catch_panic(lr__ap_init_closure, &env, &custom, sizeof custom)) {
        lr__ap_send_init_result(capture->parent, capture->init_tag, true, NULL);
        return; /* a Normal exit: a linked parent is not killed */
    }
    lr__ap_send_init_result(capture->parent, capture->init_tag, false, custom);
    if (custom)
        return;
    int64_t reply_tag = lr__ap_loop(t, state);
    /* ShutdownMessage(ReturnAddress) is decoded before terminate runs. */
    lr_de de = {0};
    lr_process return_address = lr_de_process(&de);
    lr_de_unwrap(&de, "ShutdownMessage");
    if (t->terminate)
        t->terminate(state);
    lr_message_new(reply_tag); /* `()`: nothing to encode */
    lr_message_send(return_address);
}

/* LR_ABSTRACT_PROCESS(Name, .type_name = "...", .init = ..., ...) defines the
 * descriptor `Name` and its per-type wrapper and lifecycle entry. */
#define LR_ABSTRACT_PROCESS(Name, ...)                                                         \
    static const lr_ap_type Name;                                                              \
    static void Name##_lifecycle_entry(lr_ap_capture *capture) {                               \
        lr_ap_lifecycle(&Name, capture);                                                       \
    }                                                                                          \
    static void Name##_type_helper_wrapper(int32_t entry_index) {                              \
        lr_ap_type_helper_wrapper(&Name, entry_index);                                         \
    }                                                                                          \
    static const lr_ap_type Name = {.type_helper_wrapper = Name##_type_helper_wrapper,         \
                                    .entry = Name##_lifecycle_entry,                           \
                                    __VA_ARGS__}

/* ---- the parent side: starting ---------------------------------------------- */

/* AbstractProcessBuilder: T::start (plain), T::link() (the link tag is made
 * with Tag::new() when the builder is made, before the init tag),
 * T::link_with(tag), T::configure(config). */
typedef struct {
    int64_t link;
    int64_t config_id;
} lr_ap_builder;

static inline lr_ap_builder lr_ap_plain(void) { return (lr_ap_builder){0, -1}; }
static inline lr_ap_builder lr_ap_link(void) { return (lr_ap_builder){lr_tag_new(), -1}; }
static inline lr_ap_builder lr_ap_link_with(int64_t tag) { return (lr_ap_builder){tag, -1}; }

/* Result<ProcessRef<T>, StartupError<T>> */
typedef enum {
    LR_STARTED = -1, /* Ok(ProcessRef) */
    LR_INIT_PANICKED = 0,
    LR_NAME_REGISTERED = 1,
    LR_CUSTOM_ERROR = 2
} lr_start_status;

typedef struct {
    lr_start_status status;
    lr_process process; /* the new process, or the registered one */
    char *custom;       /* LR_CUSTOM_ERROR: the String, malloc'd */
} lr_ap_start_result;

/* Steps 1 of 5.7: init_tag = Tag::new(), this = Process::this(), then the
 * spawn (linked with the builder's tag, named through get_or_spawn when
 * `name` is a full key) with capture (this, init_tag, arg). Returns the
 * spawn's code (2: the name is taken and *process is its holder). */
static inline uint32_t lr_ap_start_without_wait(const lr_ap_builder *b, const lr_ap_type *t,
                                                const char *key, const void *arg,
                                                int64_t *init_tag, lr_process *process) {
    *init_tag = lr_tag_new();
    lr_ap_capture capture = {.type = t, .init_tag = *init_tag, .arg = (void *)arg};
    capture.parent = lr_process_this();
    lr_spawn_opts opts = {.link = b->link, .config_id = b->config_id, .name = key};
    uint32_t r = lr_spawn_by_index(&opts, t->type_helper_wrapper, LR_INDEX(t->entry),
                                   lr__ap_encode_capture, &capture, process);
    if (r == LR_SPAWN_FAILED)
        lr__spawn_unwrap(r, *process);
    return r;
}

/* Step 2: block in receive([init_tag], u64::MAX) and decode
 * Result<(), StartupError<T>>. */
static inline void lr_ap_wait_on_init(int64_t init_tag, lr_ap_start_result *out) {
    lr_mailbox_tag_receive(&init_tag, 1);
    lr_de de = {0};
    out->status = LR_STARTED;
    out->custom = NULL;
    if (lr_de_variant(&de) == 1) {
        out->status = (lr_start_status)lr_de_variant(&de);
        if (out->status == LR_NAME_REGISTERED)
            out->process = lr_de_process(&de);
        else if (out->status == LR_CUSTOM_ERROR)
            out->custom = lr_de_string(&de, NULL);
        else if (out->status != LR_INIT_PANICKED)
            de.failed = true;
    }
    lr_de_unwrap(&de, "Result<(), StartupError>");
}

/* builder.start(arg) */
static inline lr_start_status lr_ap_start(const lr_ap_builder *b, const lr_ap_type *t,
                                          const void *arg, lr_ap_start_result *out) {
    int64_t init_tag;
    lr_ap_start_without_wait(b, t, NULL, arg, &init_tag, &out->process);
    lr_ap_wait_on_init(init_tag, out);
    return out->status;
}

/* builder.start_as(name, arg): get_or_spawn under the ProcessRef key; a
 * taken name is Err(NameAlreadyRegistered(holder)) without waiting. */
static inline lr_start_status lr_ap_start_as(const lr_ap_builder *b, const lr_ap_type *t,
                                             const char *name, const void *arg,
                                             lr_ap_start_result *out) {
    char key[LR_KEY_MAX];
    int64_t init_tag;
    if (lr_ap_start_without_wait(b, t, lr_ap_name(key, t, name), arg, &init_tag,
                                 &out->process) == LR_NAME_ALREADY_REGISTERED) {
        out->status = LR_NAME_REGISTERED;
        out->custom = NULL;
        return out->status;
    }
    lr_ap_wait_on_init(init_tag, out);
    return out->status;
}

/* ---- the client side ---------------------------------------------------------- */

/* AbstractProcessTag::from_u6(h): (h << 56) | Tag::new(). */
static inline int64_t lr_ap_tag(unsigned h) {
    if (h >= 64)
        lr_panic("Only values less than 64 can fit into a `u6`");
    return ((int64_t)h << 56) | lr_tag_new();
}

#define LR_SHUTDOWN_HANDLER 32u

/* pref.send(m) for handler h (a Message<M>): tag_send((h << 56) | Tag::new(), m). */
static inline void lr_ap_send(lr_process server, unsigned h, lr_encode_fn encode,
                              const void *message) {
    int64_t tag = lr_ap_tag(h);
    lr_message_new(tag);
    if (encode)
        encode(message);
    lr_message_send(server);
}

/* pref.with_delay(d).send(m): the same through send_after; returns the timer id. */
static inline uint64_t lr_ap_send_after(lr_process server, unsigned h, lr_encode_fn encode,
                                        const void *message, uint64_t delay_ms) {
    int64_t tag = lr_ap_tag(h);
    lr_message_new(tag);
    if (encode)
        encode(message);
    return lr_message_send_after(server, delay_ms);
}

/* pref.request(r) / with_timeout(d).request(r) for handler h (a Request<R>
 * or DeferredRequest<R>): ReturnAddress::from_self(), tag (h << 56) | u,
 * payload RequestMessage(r, ReturnAddress), then send_receive_skip_search(pid,
 * u, timeout). Returns 0 with the decoded response, or LR_TIMEOUT. */
static inline uint32_t lr_ap_request(lr_process server, unsigned h, lr_encode_fn encode_request,
                                     const void *request, void (*decode_response)(lr_de *, void *),
                                     void *response, uint64_t timeout_ms) {
    lr_process return_address = lr_process_this();
    int64_t send_tag = lr_ap_tag(h);
    int64_t receive_tag = send_tag & LR_TAG_MASK;
    lr_message_new(send_tag);
    if (encode_request)
        encode_request(request);
    lr_ser_process(return_address);
    if (lr_message_send_receive(server, receive_tag, timeout_ms) == LR_TIMEOUT)
        return LR_TIMEOUT;
    lr_de de = {0};
    if (decode_response)
        decode_response(&de, response);
    if (de.failed)
        lr_panic("Could not deserialize message: response");
    return 0;
}

/* pref.shutdown() / with_timeout(d).shutdown(): tag (32 << 56) | u, payload
 * ShutdownMessage(ReturnAddress); the reply is `()`. */
static inline uint32_t lr_ap_shutdown(lr_process server, uint64_t timeout_ms) {
    return lr_ap_request(server, LR_SHUTDOWN_HANDLER, NULL, NULL, NULL, NULL, timeout_ms);
}

/* DeferredResponse::send_response(r): tag_send(tag, r) to the return address. */
static inline void lr_deferred_reply_begin(const lr_deferred_response *d) {
    lr_message_new(d->tag);
}
static inline void lr_deferred_reply_send(const lr_deferred_response *d) {
    lr_message_send(d->return_address);
}

/* pref.link_with(tag) and pref.link(), which uses Tag::new(). */
static inline void lr_ap_ref_link_with(lr_process p, int64_t tag) {
    lunatic_process_link(tag, p.id);
}
static inline void lr_ap_ref_link(lr_process p) { lr_ap_ref_link_with(p, lr_tag_new()); }

/* ========================================================================
 * 12. Supervisor (5.8)
 *
 * A supervisor is an AbstractProcess with handlers
 * (Request<GetChildren>, DeferredRequest<ShutdownSubscribe>). Its init calls
 * die_if_link_dies(false), runs the user's init (strategy, children's
 * types, arguments and names), then starts each child in order with a fresh
 * tag_i = Tag::new(): link_with(tag_i).start(arg) or .start_as(name, arg),
 * each blocking until the child's init is done. A LinkDied(tag_i) restarts
 * (OneForOne) that child, or (OneForAll) shuts the others down in reverse
 * order and restarts all of them, each with a new tag; a named child's
 * registry entry is removed before its start_as.
 * ====================================================================== */

#define LR_SUPERVISOR_MAX_CHILDREN 8
#define LR_SUPERVISOR_MAX_SUBSCRIBERS 8

typedef enum { LR_ONE_FOR_ONE, LR_ONE_FOR_ALL } lr_supervisor_strategy;

typedef struct {
    const lr_ap_type *type;
    const void *arg;  /* T::Arg, in the supervisor's memory */
    const char *name; /* NULL: unnamed */
    lr_process process;
    int64_t tag;
} lr_supervisor_child;

/* SupervisorConfig<T>: the supervisor's state. */
typedef struct {
    lr_supervisor_strategy strategy;
    size_t count;
    lr_supervisor_child children[LR_SUPERVISOR_MAX_CHILDREN];
    size_t subscriber_count;
    lr_deferred_response subscribers[LR_SUPERVISOR_MAX_SUBSCRIBERS];
} lr_supervisor_config;

static inline void lr_supervisor_set_strategy(lr_supervisor_config *c,
                                              lr_supervisor_strategy strategy) {
    c->strategy = strategy;
}
/* One element of children_args: (arg, name) for a child of type `type`. */
static inline void lr_supervisor_add_child(lr_supervisor_config *c, const lr_ap_type *type,
                                           const void *arg, const char *name) {
    if (c->count == LR_SUPERVISOR_MAX_CHILDREN)
        lr_panic("too many children");
    c->children[c->count++] = (lr_supervisor_child){.type = type, .arg = arg, .name = name};
}

/* What LR_SUPERVISOR keeps in the descriptor's `impl`. */
typedef struct {
    void (*init)(lr_supervisor_config *config, const void *arg);
} lr_supervisor_spec;

/* Child::link_with(tag_i).start(arg) / .start_as(name, arg) */
static inline void lr__supervisor_start_child(lr_supervisor_child *child) {
    child->tag = lr_tag_new();
    lr_ap_builder b = lr_ap_link_with(child->tag);
    lr_ap_start_result r;
    lr_start_status s = child->name ? lr_ap_start_as(&b, child->type, child->name, child->arg, &r)
                                    : lr_ap_start(&b, child->type, child->arg, &r);
    if (s != LR_STARTED)
        lr_panic("Supervisor failed to start child `%s`", child->type->type_name);
    child->process = r.process;
}

/* Restarting a named child: the runtime never removes names (6.5). */
static inline void lr__supervisor_restart_child(lr_supervisor_child *child) {
    if (child->name) {
        char key[LR_KEY_MAX];
        lr_registry_remove(lr_ap_name(key, child->type, child->name));
    }
    lr__supervisor_start_child(child);
}

static inline const char *lr_supervisor_init(const lr_ap_config *config, void *state,
                                             const void *arg) {
    const lr_supervisor_spec *spec = config->type->impl;
    lr_supervisor_config *c = state;
    lr_ap_config_die_if_link_dies(config, false);
    c->strategy = LR_ONE_FOR_ONE;
    spec->init(c, arg);
    for (size_t i = 0; i < c->count; i++)
        lr__supervisor_start_child(&c->children[i]);
    return NULL;
}

static inline void lr_supervisor_handle_link_death(void *state, int64_t tag) {
    lr_supervisor_config *c = state;
    size_t failed = c->count;
    for (size_t i = 0; i < c->count; i++)
        if (c->children[i].tag == tag)
            failed = i;
    if (failed == c->count)
        lr_panic("Supervisor received link death signal not belonging to a child");
    if (c->strategy == LR_ONE_FOR_ONE) {
        lr__supervisor_restart_child(&c->children[failed]);
        return;
    }
    /* OneForAll */
    for (size_t i = c->count; i-- > 0;)
        if (i != failed)
            lr_ap_shutdown(c->children[i].process, LR_NO_TIMEOUT);
    for (size_t i = 0; i < c->count; i++)
        lr__supervisor_restart_child(&c->children[i]);
}

static inline void lr_supervisor_terminate(void *state) {
    lr_supervisor_config *c = state;
    for (size_t i = 0; i < c->subscriber_count; i++) {
        lr_deferred_reply_begin(&c->subscribers[i]); /* `()` */
        lr_deferred_reply_send(&c->subscribers[i]);
    }
    for (size_t i = c->count; i-- > 0;)
        lr_ap_shutdown(c->children[i].process, LR_NO_TIMEOUT);
}

/* Handler 1, Request<GetChildren>: the children's ProcessRefs, in order.
 * The response buffer holds a pointer to the state; encoding it writes the
 * (ProcessRef, ...) tuple, 16 bytes per child. */
__attribute__((unused)) static void lr__supervisor_get_children(void *state, void *request,
                                                                void *response) {
    (void)request;
    memcpy(response, &state, sizeof state);
}
__attribute__((unused)) static void lr__supervisor_encode_children(const void *response) {
    const lr_supervisor_config *c;
    memcpy(&c, response, sizeof c);
    for (size_t i = 0; i < c->count; i++)
        lr_ser_process(c->children[i].process);
}
/* Handler 2, DeferredRequest<ShutdownSubscribe>: answered at terminate. */
__attribute__((unused)) static void lr__supervisor_subscribe(void *state, void *request, lr_deferred_response d) {
    (void)request;
    lr_supervisor_config *c = state;
    if (c->subscriber_count == LR_SUPERVISOR_MAX_SUBSCRIBERS)
        lr_panic("too many shutdown subscribers");
    c->subscribers[c->subscriber_count++] = d;
}

__attribute__((unused)) static const lr_handler lr_supervisor_handlers[2] = {
    {.kind = LR_REQUEST,
     .response_size = sizeof(void *),
     .on_request = lr__supervisor_get_children,
     .encode_response = lr__supervisor_encode_children},
    {.kind = LR_DEFERRED_REQUEST, .on_deferred = lr__supervisor_subscribe},
};

#define LR_SUPERVISOR_CHILDREN 1u       /* sup.children() */
#define LR_SUPERVISOR_WAIT_ON_SHUTDOWN 2u /* sup.wait_on_shutdown() */

/* LR_SUPERVISOR(Name, "type name", init, arg fields...): a supervisor type.
 * `init(lr_supervisor_config *, const void *arg)` sets the strategy and
 * adds the children. */
#define LR_SUPERVISOR(Name, TypeName, Init, ...)                                               \
    static const lr_supervisor_spec Name##_spec = {.init = Init};                             \
    LR_ABSTRACT_PROCESS(Name, .type_name = TypeName,                                           \
                        .state_size = sizeof(lr_supervisor_config),                           \
                        .init = lr_supervisor_init, .terminate = lr_supervisor_terminate,      \
                        .handle_link_death = lr_supervisor_handle_link_death,                  \
                        .handlers = lr_supervisor_handlers, .handler_count = 2,                \
                        .impl = &Name##_spec, __VA_ARGS__)

/* sup.children() for a supervisor with `count` children: an ordinary
 * request to handler 1 (GetChildren is a unit struct: 0 bytes). */
typedef struct {
    size_t count;
    lr_process *children;
} lr__children_out;

__attribute__((unused)) static void lr__decode_children(lr_de *de, void *out) {
    lr__children_out *o = out;
    for (size_t i = 0; i < o->count; i++)
        o->children[i] = lr_de_process(de);
}

static inline void lr_supervisor_children(lr_process sup, lr_process *children, size_t count) {
    lr__children_out out = {.count = count, .children = children};
    lr_ap_request(sup, LR_SUPERVISOR_CHILDREN, NULL, NULL, lr__decode_children, &out,
                  LR_NO_TIMEOUT);
}

/* ========================================================================
 * 13. Test exports (1.13, 5.2)
 *
 * #[lunatic::test] exports each test as
 *   #lunatic_test_[#ignore_][#panic_<expected>#]<module path>::<name>
 * with `#` in the expected text escaped as `\#`. In a C string literal,
 * write that backslash twice: LR_TEST_SHOULD_PANIC(f, "a \\# b", "m::t").
 * ====================================================================== */

#define LR_TEST(ident, name)                                                                   \
    __attribute__((export_name("#lunatic_test_" name))) void ident(void)
#define LR_TEST_IGNORE(ident, name)                                                            \
    __attribute__((export_name("#lunatic_test_#ignore_" name))) void ident(void)
#define LR_TEST_SHOULD_PANIC(ident, expected, name)                                            \
    __attribute__((export_name("#lunatic_test_#panic_" expected "#" name))) void ident(void)

#endif /* LUNATIC_RS_H */
