/* Guests whose messages a Python process checks byte by byte against
 * HOSTAPI.md Appendix B (tests/test_lunatic_rs_conventions.py).
 *
 * Every export is an entry point spawned from Python with the Python peer's
 * process id as its first parameter. The library code (lunatic_rs.h) does
 * the talking; the few extra messages these guests send are reports to the
 * peer, always tagged (1 to 4) so that the peer can tell them apart from the
 * traffic under test:
 *   tag 1: a report from the export itself,
 *   tag 2: a report from a spawned child's type_helper_wrapper,
 *   tag 3: a report from a spawned child's entry function,
 *   tag 4: the id of a spawned child. */
#include "lunatic_rs.h"

#define EXPORT(name) __attribute__((export_name(name)))

static lr_process process_of(uint64_t id) { return (lr_process){.node_id = 0, .id = id}; }

static void encode_u32(const void *v) { lr_ser_u32(*(const uint32_t *)v); }
static void decode_u32(lr_de *de, void *v) { *(uint32_t *)v = lr_de_u32(de); }

/* Capture: the peer, as a Process (16 bytes). */
struct peer {
    lr_process who;
};
static void peer_encode(const struct peer *p) { lr_ser_process(p->who); }
static void peer_decode(lr_de *de, struct peer *p) { p->who = lr_de_process(de); }
LR_CAPTURE(peer, struct peer, peer_encode, peer_decode)

/* ---- B.1: a spawn through the trampoline --------------------------------------------
 *
 * b1_parent(peer) reports (tag 1) the 30-byte function name and the 34
 * parameter bytes it passes to spawn, spawns b1_entry with the peer as
 * capture, and reports the child's id (tag 4). The child's wrapper reports
 * (tag 2) the (f, a) the trampoline called it with, and the entry reports
 * (tag 3) its own table index, then waits for one message and returns. */

static void b1_entry(struct peer *p) {
    lr_message_new(3);
    lr_ser_i32(LR_INDEX(b1_entry));
    lr_message_send(p->who);
    lr_mailbox_receive();
}

/* peer_type_helper_wrapper, plus a report of how it was called. */
static void b1_reporting_wrapper(int32_t entry_index) {
    lr_mailbox_receive();
    lr_de de = {0};
    struct peer capture;
    peer_decode(&de, &capture);
    lr_de_unwrap(&de, "Process");
    lr_message_new(2);
    lr_ser_i32(LR_INDEX(b1_reporting_wrapper)); /* f: the table entry the trampoline called */
    lr_ser_i32(entry_index);                    /* a */
    lr_message_send(capture.who);
    ((void (*)(struct peer *))(uintptr_t)entry_index)(&capture);
}

EXPORT("b1_parent") void b1_parent(uint64_t peer_id) {
    lr_process peer = process_of(peer_id);
    uint8_t params[34];
    lr_encode_spawn_params(params, LR_INDEX(b1_reporting_wrapper), LR_INDEX(b1_entry));
    lr_message_new(1);
    lr_ser_bytes(LR_SPAWN_BY_INDEX, LR_SPAWN_BY_INDEX_LEN);
    lr_ser_bytes(params, sizeof params);
    lr_message_send(peer);
    struct peer capture = {peer};
    lr_process child;
    lr_spawn_by_index(&LR_SPAWN_PLAIN, b1_reporting_wrapper, LR_INDEX(b1_entry),
                      peer_encode_capture, &capture, &child);
    lr_message_new(4);
    lr_ser_u64(child.id);
    lr_message_send(peer);
}

/* ---- B.2: a plain message ------------------------------------------------------------ */

/* process.send((7i32, String::from("hi"))) */
EXPORT("b2_send") void b2_send(uint64_t peer_id) {
    lr_message_new(0);
    lr_ser_i32(7);
    lr_ser_str("hi");
    lr_message_send(process_of(peer_id));
}

/* Receives an (i32, String) and sends back (2 * n, s), tagged 1. */
EXPORT("b2_echo") void b2_echo(uint64_t peer_id) {
    lr_mailbox_receive();
    lr_de de = {0};
    int32_t n = lr_de_i32(&de);
    size_t len = 0;
    char *s = lr_de_string(&de, &len);
    lr_de_unwrap(&de, "(i32, String)");
    lr_message_new(1);
    lr_ser_i32(2 * n);
    lr_ser_str_len(s, len);
    lr_message_send(process_of(peer_id));
}

/* ---- B.4: requests, with the peer as the server, or as the client ---------------------- */

/* Three requests to handler 2 of the peer (Count, a unit struct): no timeout,
 * a 50 ms timeout the peer lets expire, no timeout. Each result is reported
 * (tag 1) as (u32 code, u32 response). */
EXPORT("b4_client") void b4_client(uint64_t server_id, uint64_t peer_id) {
    lr_process server = process_of(server_id), peer = process_of(peer_id);
    static const uint64_t timeouts[3] = {LR_NO_TIMEOUT, 50, LR_NO_TIMEOUT};
    for (int i = 0; i < 3; i++) {
        uint32_t response = 0;
        uint32_t code = lr_ap_request(server, 2, NULL, NULL, decode_u32, &response, timeouts[i]);
        lr_message_new(1);
        lr_ser_u32(code);
        lr_ser_u32(response);
        lr_message_send(peer);
    }
}

/* A counter: Handlers = (Message<Inc>, Request<Count>). */
struct counter {
    uint32_t count;
};
static const char *counter_init(const lr_ap_config *config, void *state, const void *arg) {
    (void)config;
    uint32_t start = *(const uint32_t *)arg;
    if (start == 13)
        lr_panic("init refuses to count from 13");
    ((struct counter *)state)->count = start;
    return NULL;
}
static void counter_inc(void *state, void *message) {
    (void)message;
    ((struct counter *)state)->count++;
}
static void counter_count(void *state, void *request, void *response) {
    (void)request;
    memcpy(response, &((struct counter *)state)->count, 4);
}
static const lr_handler counter_handlers[] = {
    {.kind = LR_MESSAGE, .on_message = counter_inc},
    {.kind = LR_REQUEST, .response_size = 4, .on_request = counter_count,
     .encode_response = encode_u32},
};
LR_ABSTRACT_PROCESS(Counter, .type_name = "payloads::Counter", .arg_size = 4,
                    .state_size = sizeof(struct counter), .encode_arg = encode_u32,
                    .decode_arg = decode_u32, .init = counter_init, .handlers = counter_handlers,
                    .handler_count = 2);

/* Starts Counter(5) and reports its id (tag 1); the peer then talks to it
 * directly. Returns when it gets a message. */
EXPORT("b4_counter") void b4_counter(uint64_t peer_id) {
    uint32_t start = 5;
    lr_ap_builder b = lr_ap_plain();
    lr_ap_start_result r;
    if (lr_ap_start(&b, &Counter, &start, &r) != LR_STARTED)
        lr_panic("the counter did not start");
    lr_message_new(1);
    lr_ser_u64(r.process.id);
    lr_message_send(process_of(peer_id));
    lr_mailbox_receive();
}

/* ---- B.5: starting an AbstractProcess --------------------------------------------------
 *
 * Probe is the counter with an instrumented type_helper_wrapper: before
 * going on as usual, it reports (tag 2) the raw capture it received, as
 * (i64 tag, bytes), to the peer it finds in the registry. */

#define PEER_KEY "payloads::peer"

static const lr_ap_type Probe;
static void probe_entry(lr_ap_capture *capture) { lr_ap_lifecycle(&Probe, capture); }
static void probe_wrapper(int32_t entry_index) {
    lr_mailbox_receive();
    int64_t tag = lunatic_message_get_tag();
    uint8_t raw[64];
    size_t size = (size_t)lunatic_message_data_size();
    if (size > sizeof raw)
        lr_panic("capture too large");
    lunatic_message_read_data(raw, size);
    lunatic_message_seek_data(0);
    /* decode as the library's wrapper does, then report, then enter */
    lr_ap_capture capture = {.type = &Probe, .arg = malloc(4)};
    lr_de de = {0};
    capture.parent = lr_de_process(&de);
    capture.init_tag = lr_de_i64(&de);
    decode_u32(&de, capture.arg);
    lr_de_unwrap(&de, "(Process, Tag, u32)");
    lr_process peer;
    if (!lr_registry_get(PEER_KEY, &peer))
        lr_panic("no peer registered");
    lr_message_new(2);
    lr_ser_i64(tag);
    lr_ser_bytes(raw, size);
    lr_message_send(peer);
    ((void (*)(lr_ap_capture *))(uintptr_t)entry_index)(&capture);
}
static const lr_ap_type Probe = {.type_name = "payloads::Probe",
                                 .arg_size = 4,
                                 .state_size = sizeof(struct counter),
                                 .encode_arg = encode_u32,
                                 .decode_arg = decode_u32,
                                 .init = counter_init,
                                 .handlers = counter_handlers,
                                 .handler_count = 2,
                                 .type_helper_wrapper = probe_wrapper,
                                 .entry = probe_entry};

/* linked = 1: Probe::link().start(arg); linked = 0: Probe::start(arg). Reports
 * (tag 1) the init tag it made, the reply's tag and the reply's bytes, and
 * (tag 4) the child's id. */
EXPORT("b5_start") void b5_start(uint64_t peer_id, int32_t linked, int32_t arg) {
    lr_process peer = process_of(peer_id);
    lr_registry_put(PEER_KEY, peer);
    lr_ap_builder b = linked ? lr_ap_link() : lr_ap_plain();
    uint32_t start = (uint32_t)arg;
    int64_t init_tag;
    lr_process child;
    lr_ap_start_without_wait(&b, &Probe, NULL, &start, &init_tag, &child);
    lr_mailbox_tag_receive(&init_tag, 1);
    int64_t reply_tag = lunatic_message_get_tag();
    uint8_t raw[64];
    size_t size = lunatic_message_read_data(raw, sizeof raw);
    lr_message_new(1);
    lr_ser_i64(init_tag);
    lr_ser_i64(reply_tag);
    lr_ser_bytes(raw, size);
    lr_message_send(peer);
    lr_message_new(4);
    lr_ser_u64(child.id);
    lr_message_send(peer);
}

int main(void) { return 0; }
