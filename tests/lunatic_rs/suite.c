/* A lunatic test build written against lunatic_rs.h: each test checks one
 * convention of lunatic-rs 0.14.1 (HOSTAPI.md section 5) as it runs on the
 * host, and is named after it. `lunatrio test suite.wasm` runs them; the
 * tests under expected_failures:: fail on purpose, so that the Python side
 * can check how failures are reported (tests/test_lunatic_rs_conventions.py).
 *
 * Events are ordered with messages, never with sleeps: a message from A to B
 * arrives after everything A sent B before it (1.11), a dying process
 * notifies its links before its monitors (1.8), and a tag filter picks one
 * message out of many. Only the timer tests wait, since that is what timers
 * are for. */
#include "lunatic_rs.h"

/* ---- shared types ----------------------------------------------------------- */

static void encode_u32(const void *v) { lr_ser_u32(*(const uint32_t *)v); }
static void decode_u32(lr_de *de, void *v) { *(uint32_t *)v = lr_de_u32(de); }

static uint32_t receive_u32(void) {
    lr_mailbox_receive();
    lr_de de = {0};
    uint32_t v = lr_de_u32(&de);
    lr_de_unwrap(&de, "u32");
    return v;
}

static void send_u32(lr_process to, int64_t tag, uint32_t v) {
    lr_message_new(tag);
    lr_ser_u32(v);
    lr_message_send(to);
}

/* Wait until every process in `pids` (each monitored) has died, whatever
 * the order; returns how many LinkDied signals came in the meantime. */
static int link_deaths_until_all_died(const uint64_t *pids, size_t count) {
    int link_deaths = 0;
    size_t alive = count;
    bool dead[8] = {false};
    while (alive > 0) {
        int64_t tag;
        uint64_t died = 0;
        uint32_t kind = lr_mailbox_receive_signal(NULL, 0, LR_NO_TIMEOUT, &tag, &died);
        if (kind == LR_LINK_DIED)
            link_deaths++;
        for (size_t i = 0; kind == LR_PROCESS_DIED && i < count; i++)
            if (pids[i] == died && !dead[i]) {
                dead[i] = true;
                alive--;
            }
    }
    return link_deaths;
}

static int link_deaths_before_death_of(uint64_t pid) {
    return link_deaths_until_all_died(&pid, 1);
}

/* Capture: a process to talk to (16 bytes). */
struct peer {
    lr_process who;
};
static void peer_encode(const struct peer *p) { lr_ser_process(p->who); }
static void peer_decode(lr_de *de, struct peer *p) { p->who = lr_de_process(de); }
LR_CAPTURE(peer, struct peer, peer_encode, peer_decode)

/* Capture: (reply_to, i32, String). */
struct echo {
    lr_process reply_to;
    int32_t number;
    char *text;
};
static void echo_encode(const struct echo *e) {
    lr_ser_process(e->reply_to);
    lr_ser_i32(e->number);
    lr_ser_str(e->text);
}
static void echo_decode(lr_de *de, struct echo *e) {
    e->reply_to = lr_de_process(de);
    e->number = lr_de_i32(de);
    e->text = lr_de_string(de, NULL);
}
LR_CAPTURE(echo, struct echo, echo_encode, echo_decode)

/* Children. */
static void panicking_child(void) { lr_panic("a child panics on purpose"); }

static void waiting_child(void) { lr_mailbox_receive(); }

static void panics_when_told(struct peer *p) {
    (void)p;
    lr_mailbox_receive();
    lr_panic("child text");
}

/* ---- an AbstractProcess: a counter -------------------------------------------- */

struct counter {
    uint32_t count;
};

/* init refuses 13 with a panic and 666 with a custom error. */
static const char *counter_init(const lr_ap_config *config, void *state, const void *arg) {
    (void)config;
    uint32_t start = *(const uint32_t *)arg;
    if (start == 13)
        lr_panic("init refuses to count from 13");
    if (start == 666)
        return "666 is not a count";
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
static void counter_crash(void *state, void *message) {
    (void)state;
    (void)message;
    lr_panic("the counter crashes when asked to");
}

/* Handlers = (Message<Inc>, Request<Count>, Message<Crash>): all unit structs. */
enum { INC = 1, COUNT = 2, CRASH = 3 };
static const lr_handler counter_handlers[] = {
    {.kind = LR_MESSAGE, .on_message = counter_inc},
    {.kind = LR_REQUEST, .response_size = 4, .on_request = counter_count,
     .encode_response = encode_u32},
    {.kind = LR_MESSAGE, .on_message = counter_crash},
};

LR_ABSTRACT_PROCESS(Counter, .type_name = "suite::Counter", .arg_size = 4,
                    .state_size = sizeof(struct counter), .encode_arg = encode_u32,
                    .decode_arg = decode_u32, .init = counter_init, .handlers = counter_handlers,
                    .handler_count = 3);

static uint32_t count_of(lr_process counter) {
    uint32_t count = 0;
    lr_assert_eq(lr_ap_request(counter, COUNT, NULL, NULL, decode_u32, &count, LR_NO_TIMEOUT),
                 0);
    return count;
}

static lr_process start_counter(uint32_t start) {
    lr_ap_builder b = lr_ap_plain();
    lr_ap_start_result r;
    lr_assert_eq(lr_ap_start(&b, &Counter, &start, &r), LR_STARTED);
    return r.process;
}

/* ---- supervisors ------------------------------------------------------------------- */

static const uint32_t ten = 10, twenty = 20;

static void counters_one_for_one(lr_supervisor_config *config, const void *arg) {
    (void)arg;
    lr_supervisor_set_strategy(config, LR_ONE_FOR_ONE);
    lr_supervisor_add_child(config, &Counter, &ten, NULL);
    lr_supervisor_add_child(config, &Counter, &twenty, "b");
}
LR_SUPERVISOR(CountersOneForOne, "suite::CountersOneForOne", counters_one_for_one);

static void counters_one_for_all(lr_supervisor_config *config, const void *arg) {
    (void)arg;
    lr_supervisor_set_strategy(config, LR_ONE_FOR_ALL);
    lr_supervisor_add_child(config, &Counter, &ten, NULL);
    lr_supervisor_add_child(config, &Counter, &twenty, "b");
}
LR_SUPERVISOR(CountersOneForAll, "suite::CountersOneForAll", counters_one_for_all);

/* Started linked: if the supervisor panicked (a stray LinkDied, say), the
 * test would die with it instead of waiting forever. */
static lr_process start_linked_supervisor(const lr_ap_type *type) {
    lr_ap_builder b = lr_ap_link();
    lr_ap_start_result r;
    lr_assert_eq(lr_ap_start(&b, type, NULL, &r), LR_STARTED);
    return r.process;
}

/* Crash a child and wait for its death: the LinkDied it sends the
 * supervisor is then queued ahead of anything this process sends later. */
static void crash(lr_process child) {
    lr_mailbox_monitor(child);
    lr_ap_send(child, CRASH, NULL, NULL);
    link_deaths_before_death_of(child.id);
}

/* =====================================================================================
 * spawn:: (5.3, B.1)
 * =================================================================================== */

static void echo_entry(struct echo *capture) {
    uint32_t follow_up = receive_u32();
    lr_message_new(0);
    lr_ser_i32(capture->number);
    lr_ser_str(capture->text);
    lr_ser_u32(follow_up);
    lr_message_send(capture->reply_to);
}

LR_TEST(spawn_capture_is_the_first_message, "spawn::the_capture_is_the_childs_first_message") {
    lr_process child = echo_spawn(echo_entry, (struct echo){lr_process_this(), 7, "hi"});
    /* sent right after spawn returns: the child must get it after the capture */
    send_u32(child, 0, 99);
    lr_mailbox_receive();
    lr_de de = {0};
    int32_t number = lr_de_i32(&de);
    char *text = lr_de_string(&de, NULL);
    uint32_t follow_up = lr_de_u32(&de);
    lr_de_unwrap(&de, "(i32, String, u32)");
    lr_assert_eq(number, 7);
    lr_assert(strcmp(text, "hi") == 0);
    lr_assert_eq(follow_up, 99);
}

static void unit_child_reports_its_first_message(void) {
    lr_mailbox_receive();
    int64_t tag = lunatic_message_get_tag();
    lr_de de = {0};
    lr_process parent = lr_de_process(&de);
    lr_de_unwrap(&de, "Process");
    lr_message_new(0);
    lr_ser_i64(tag);
    lr_message_send(parent);
}

LR_TEST(spawn_zero_sized_capture, "spawn::a_zero_sized_capture_is_not_sent") {
    lr_process child = lr_unit_spawn(unit_child_reports_its_first_message);
    lr_message_new(LR_TAG_SPECIAL(64));
    lr_ser_process(lr_process_this());
    lr_message_send(child);
    lr_mailbox_receive();
    lr_de de = {0};
    int64_t first_tag = lr_de_i64(&de);
    lr_de_unwrap(&de, "i64");
    lr_assert_eq(first_tag, 64); /* nothing came before the marker */
}

/* A type_helper_wrapper that reports how the trampoline called it. */
static void reporting_wrapper(int32_t entry_index) {
    lr_mailbox_receive();
    lr_de de = {0};
    lr_process parent = lr_de_process(&de);
    lr_de_unwrap(&de, "Process");
    lr_message_new(0);
    lr_ser_i32(LR_INDEX(reporting_wrapper)); /* `f`: this function's table index */
    lr_ser_i32(entry_index);                 /* `a` */
    lr_message_send(parent);
    ((void (*)(void))(uintptr_t)entry_index)();
}

static void trampoline_entry(void) {}

LR_TEST(spawn_trampoline_indices, "spawn::the_trampoline_calls_the_wrapper_with_the_entry_index") {
    struct peer capture = {lr_process_this()};
    lr_process child;
    lr_assert_eq(lr_spawn_by_index(&LR_SPAWN_PLAIN, reporting_wrapper, LR_INDEX(trampoline_entry),
                                   peer_encode_capture, &capture, &child),
                 LR_SPAWNED);
    lr_mailbox_receive();
    lr_de de = {0};
    int32_t f = lr_de_i32(&de), a = lr_de_i32(&de);
    lr_de_unwrap(&de, "(i32, i32)");
    lr_assert_eq(f, LR_INDEX(reporting_wrapper));
    lr_assert_eq(a, LR_INDEX(trampoline_entry));
    lr_assert(f != a && f != 0 && a != 0);
}

/* =====================================================================================
 * links:: (1.9, 4.6, B.6)
 * =================================================================================== */

LR_TEST(links_caught_link_death, "links::a_caught_link_death_carries_the_spawn_link_tag") {
    lr_mailbox_catch_link_failure();
    int64_t tag;
    lr_process first = lr_unit_spawn_link(panicking_child, &tag);
    lr_assert_eq(tag, 129); /* spawn_link's Tag::new(), the first of this process */
    lr_process second = lr_unit_spawn_link_tag(200, panicking_child);
    /* a tag filter finds a LinkDied by its link tag (B.6) */
    int64_t got = 0;
    int64_t filter[1] = {200};
    lr_assert_eq(lr_mailbox_receive_signal(filter, 1, LR_NO_TIMEOUT, &got, NULL), LR_LINK_DIED);
    lr_assert_eq(got, 200);
    lr_assert_eq(lunatic_message_get_process_id(), 0);
    lr_assert(!lr_process_is_alive(second)); /* removed before notifying (1.11) */
    lr_assert_eq(lr_mailbox_receive_signal(NULL, 0, LR_NO_TIMEOUT, &got, NULL), LR_LINK_DIED);
    lr_assert_eq(got, tag);
    lr_assert(!lr_process_is_alive(first));
}

static void says_goodbye_when_told(struct peer *p) {
    lr_mailbox_receive();
    send_u32(p->who, 0, 1);
}

LR_TEST(links_normal_exit, "links::a_normal_exit_produces_no_link_died") {
    lr_mailbox_catch_link_failure();
    lr_process child = peer_spawn_link(says_goodbye_when_told, (struct peer){lr_process_this()}, NULL);
    lr_mailbox_monitor(child);
    send_u32(child, 0, 0);
    /* the child's goodbye, then its death: a LinkDied would come in between */
    lr_assert_eq(lr_mailbox_receive_signal(NULL, 0, LR_NO_TIMEOUT, NULL, NULL), LR_DATA);
    lr_assert_eq(link_deaths_before_death_of(child.id), 0);
}

LR_TEST(links_kill, "links::a_killed_child_counts_as_a_failure") {
    lr_mailbox_catch_link_failure();
    lr_process child = lr_unit_spawn_link_tag(LR_TAG_SPECIAL(77), waiting_child);
    lr_process_kill(child);
    int64_t got = 0;
    lr_assert_eq(lr_mailbox_receive_signal(NULL, 0, LR_NO_TIMEOUT, &got, NULL), LR_LINK_DIED);
    lr_assert_eq(got, 77);
}

/* =====================================================================================
 * abstract_process:: (5.7, B.4, B.5)
 * =================================================================================== */

LR_TEST(ap_round_trip, "abstract_process::request_reply_round_trip_and_tag_arithmetic") {
    lr_process counter = start_counter(5); /* init tag: 129 */
    lr_assert_eq(count_of(counter), 5);    /* request tag: (2 << 56) | 130 */
    lr_ap_send(counter, INC, NULL, NULL);  /* message tag: (1 << 56) | 131 */
    lr_assert_eq(count_of(counter), 6);    /* (2 << 56) | 132 */
    lr_assert_eq(lr__tag_counter, 132);
    lr_assert_eq(lr_ap_shutdown(counter, LR_NO_TIMEOUT), 0);
}

/* A hand-written server: it checks the request's tag and bytes (B.4). */
static void raw_count_server(struct peer *client) {
    lr_mailbox_receive();
    int64_t tag = lunatic_message_get_tag();
    uint64_t size = lunatic_message_data_size();
    uint8_t got[16] = {0}, want[16] = {0};
    lunatic_message_read_data(got, sizeof got);
    memcpy(want + 8, &client->who.id, 8); /* ReturnAddress(node 0, client id) */
    lr_assert_eq(tag, (2ll << 56) | 129);
    lr_assert_eq(size, 16);
    lr_assert(memcmp(got, want, 16) == 0);
    send_u32(client->who, 129, 42); /* the reply tag is the low 7 bytes */
}

LR_TEST(ap_request_bytes, "abstract_process::a_request_is_tagged_and_encoded_as_b4") {
    /* spawn_link_tag takes no Tag::new(): the request's is this process's first */
    lr_process server =
        peer_spawn_link_tag(LR_TAG_SPECIAL(100), raw_count_server, (struct peer){lr_process_this()});
    uint32_t count = 0;
    lr_assert_eq(lr_ap_request(server, COUNT, NULL, NULL, decode_u32, &count, LR_NO_TIMEOUT), 0);
    lr_assert_eq(count, 42);
}

LR_TEST(ap_h0_ignored, "abstract_process::untagged_messages_and_late_replies_are_ignored") {
    lr_process counter = start_counter(5);
    send_u32(counter, 0, 12345);          /* untagged */
    send_u32(counter, 4242, 7);           /* h == 0: what a late reply looks like */
    lr_message_new(0);                    /* an empty one too */
    lr_message_send(counter);
    lr_assert_eq(count_of(counter), 5); /* still serving, state untouched */
}

LR_TEST(ap_shutdown, "abstract_process::shutdown_replies_with_zero_bytes_and_exits_normally") {
    lr_mailbox_catch_link_failure();
    uint32_t start = 1;
    lr_ap_builder b = lr_ap_link();
    lr_ap_start_result r;
    lr_assert_eq(lr_ap_start(&b, &Counter, &start, &r), LR_STARTED);
    lr_mailbox_monitor(r.process);
    /* pref.shutdown() by hand, to look at the reply */
    lr_process me = lr_process_this();
    int64_t send_tag = lr_ap_tag(LR_SHUTDOWN_HANDLER);
    lr_assert_eq(send_tag, (32ll << 56) | 131); /* 129: link, 130: init */
    lr_message_new(send_tag);
    lr_ser_process(me);
    lr_assert_eq(lr_message_send_receive(r.process, send_tag & LR_TAG_MASK, LR_NO_TIMEOUT), 0);
    lr_assert_eq(lunatic_message_get_tag(), 131);
    lr_assert_eq(lunatic_message_data_size(), 0);
    lr_assert_eq(link_deaths_before_death_of(r.process.id), 0);
}

LR_TEST(ap_init_panicked, "abstract_process::a_panicking_init_is_reported_as_init_panicked") {
    lr_mailbox_catch_link_failure();
    uint32_t refused = 13;
    lr_ap_builder b = lr_ap_link(); /* link tag 129 */
    int64_t init_tag;
    lr_process child;
    lr_ap_start_without_wait(&b, &Counter, NULL, &refused, &init_tag, &child);
    lr_assert_eq(init_tag, 130);
    /* lunatrio notifies a monitor at once if the child has already gone */
    lr_mailbox_monitor(child);
    lr_mailbox_tag_receive(&init_tag, 1);
    static const uint8_t want[8] = {1, 0, 0, 0, 0, 0, 0, 0}; /* Err(InitPanicked) */
    uint8_t got[16];
    lr_assert_eq(lunatic_message_data_size(), 8);
    lr_assert_eq(lunatic_message_read_data(got, sizeof got), 8);
    lr_assert(memcmp(got, want, 8) == 0);
    /* the child returned normally: no LinkDied, and this process lives on */
    lr_assert_eq(link_deaths_before_death_of(child.id), 0);
}

LR_TEST(ap_custom_error, "abstract_process::a_custom_init_error_is_returned_to_the_parent") {
    uint32_t refused = 666;
    lr_ap_builder b = lr_ap_plain();
    lr_ap_start_result r;
    lr_assert_eq(lr_ap_start(&b, &Counter, &refused, &r), LR_CUSTOM_ERROR);
    lr_assert(strcmp(r.custom, "666 is not a count") == 0);
}

LR_TEST(ap_start_as, "abstract_process::start_as_twice_reports_name_already_registered") {
    uint32_t start = 3;
    lr_ap_builder b = lr_ap_plain();
    lr_ap_start_result first, second;
    lr_assert_eq(lr_ap_start_as(&b, &Counter, "counter", &start, &first), LR_STARTED);
    lr_process found;
    lr_assert(lr_registry_get("suite::Counter/lunatic::serializer::Bincode/ProcessRef/counter",
                              &found));
    lr_assert_eq(found.id, first.process.id);
    lr_assert_eq(found.node_id, 0);
    lr_assert_eq(lr_ap_start_as(&b, &Counter, "counter", &start, &second), LR_NAME_REGISTERED);
    lr_assert_eq(second.process.id, first.process.id);
    lr_assert_eq(count_of(second.process), 3);
}

/* =====================================================================================
 * supervisor:: (5.8)
 * =================================================================================== */

LR_TEST(sup_one_for_one, "supervisor::one_for_one_restarts_the_failed_child") {
    lr_process sup = start_linked_supervisor(&CountersOneForOne);
    lr_process before[2], after[2];
    lr_supervisor_children(sup, before, 2);
    lr_assert_eq(count_of(before[0]), 10);
    lr_assert_eq(count_of(before[1]), 20);
    crash(before[0]);
    lr_supervisor_children(sup, after, 2); /* answered after the restart */
    lr_assert(after[0].id != before[0].id);
    lr_assert_eq(after[1].id, before[1].id); /* the other child was left alone */
    lr_assert_eq(count_of(after[0]), 10);    /* a fresh state from the same arg */
    lr_assert_eq(lr_ap_shutdown(sup, LR_NO_TIMEOUT), 0);
}

LR_TEST(sup_named, "supervisor::a_restarted_named_child_is_found_under_its_name") {
    lr_process sup = start_linked_supervisor(&CountersOneForOne);
    lr_process before[2], after[2], found;
    lr_supervisor_children(sup, before, 2);
    lr_assert(lr_ap_lookup(&Counter, "b", &found));
    lr_assert_eq(found.id, before[1].id);
    lr_ap_send(before[1], INC, NULL, NULL);
    lr_assert_eq(count_of(before[1]), 21);
    crash(before[1]);
    lr_supervisor_children(sup, after, 2);
    lr_assert(after[1].id != before[1].id);
    lr_assert(lr_registry_get("suite::Counter/lunatic::serializer::Bincode/ProcessRef/b", &found));
    lr_assert_eq(found.id, after[1].id);
    lr_assert_eq(count_of(found), 20);
    lr_assert_eq(lr_ap_shutdown(sup, LR_NO_TIMEOUT), 0);
}

LR_TEST(sup_one_for_all, "supervisor::one_for_all_restarts_every_child") {
    lr_process sup = start_linked_supervisor(&CountersOneForAll);
    lr_process before[2], after[2];
    lr_supervisor_children(sup, before, 2);
    lr_mailbox_monitor(before[0]);
    lr_mailbox_monitor(before[1]);
    lr_ap_send(before[0], CRASH, NULL, NULL);
    /* the supervisor shuts the other child down: a Normal exit, which must not
     * reach the supervisor as a LinkDied (it would panic on a stale tag) */
    uint64_t both[2] = {before[0].id, before[1].id};
    link_deaths_until_all_died(both, 2);
    lr_supervisor_children(sup, after, 2);
    lr_assert(after[0].id != before[0].id && after[1].id != before[1].id);
    lr_assert_eq(count_of(after[0]), 10);
    lr_assert_eq(count_of(after[1]), 20);
    lr_assert_eq(lr_ap_shutdown(sup, LR_NO_TIMEOUT), 0);
}

LR_TEST(sup_subscribers, "supervisor::shutdown_answers_subscribers_and_stops_the_children") {
    lr_process sup = start_linked_supervisor(&CountersOneForOne);
    lr_process children[2];
    lr_supervisor_children(sup, children, 2);
    lr_mailbox_monitor(children[0]);
    lr_mailbox_monitor(children[1]);
    /* wait_on_shutdown()'s DeferredRequest, sent without waiting, then shutdown:
     * from one sender, so the supervisor sees them in this order */
    lr_process me = lr_process_this();
    int64_t subscribe = lr_ap_tag(LR_SUPERVISOR_WAIT_ON_SHUTDOWN);
    lr_message_new(subscribe);
    lr_ser_process(me);
    lr_message_send(sup);
    lr_assert_eq(lr_ap_shutdown(sup, LR_NO_TIMEOUT), 0);
    /* the subscriber's `()` was sent before the shutdown's reply */
    int64_t reply_tag = subscribe & LR_TAG_MASK;
    lr_assert_eq(lr_mailbox_tag_receive_timeout(&reply_tag, 1, 0), LR_DATA);
    lr_assert_eq(lunatic_message_data_size(), 0);
    uint64_t both[2] = {children[0].id, children[1].id};
    lr_assert_eq(link_deaths_until_all_died(both, 2), 0);
}

/* =====================================================================================
 * catch_panic:: (5.10)
 * =================================================================================== */

static void panicking_closure(void *env, void *result) {
    (void)env;
    (void)result;
    lr_panic("the closure panics");
}
static void adding_closure(void *env, void *result) {
    const int32_t *terms = env;
    int32_t sum = terms[0] + terms[1];
    memcpy(result, &sum, sizeof sum);
}
static void counting_closure(void *env, void *result) {
    (void)result;
    ++*(int *)env;
}

LR_TEST(catch_err, "catch_panic::a_panicking_closure_returns_err_and_the_process_continues") {
    int32_t result = -1;
    lr_assert(!lr_catch_panic(panicking_closure, NULL, &result, sizeof result));
    lr_assert_eq(result, -1);
    /* the process carries on, messages and all, and can catch again */
    send_u32(lr_process_this(), 0, 77);
    lr_assert_eq(receive_u32(), 77);
    lr_assert(!lr_catch_panic(panicking_closure, NULL, &result, sizeof result));
}

LR_TEST(catch_ok, "catch_panic::a_returning_closure_gives_its_value") {
    int32_t terms[2] = {40, 2}, sum = 0;
    lr_assert(lr_catch_panic(adding_closure, terms, &sum, sizeof sum));
    lr_assert_eq(sum, 42);
    /* a zero-sized result still comes back in a non-null box */
    int calls = 0;
    lr_assert(lr_catch_panic(counting_closure, &calls, NULL, 0));
    lr_assert_eq(calls, 1);
}

static void blocks_after_go(void *env, void *result) {
    (void)result;
    lr_process *child = env;
    send_u32(*child, 0, 1);
    lr_mailbox_receive(); /* the linked child's death kills us here */
}

LR_TEST_SHOULD_PANIC(catch_kill, "",
                     "catch_panic::a_link_death_inside_the_closure_is_not_caught") {
    lr_process child = peer_spawn_link(panics_when_told, (struct peer){lr_process_this()}, NULL);
    lr_catch_panic(blocks_after_go, &child, NULL, 0);
    /* not reached: had catch swallowed the death, the test would return */
}

/* =====================================================================================
 * timers:: (5.6, 2.5)
 * =================================================================================== */

LR_TEST(timers_order, "timers::send_after_delivers_in_deadline_order") {
    lr_process me = lr_process_this();
    static const uint32_t delays[3] = {30, 10, 20};
    for (int i = 0; i < 3; i++) {
        lr_message_new(0);
        lr_ser_u32(delays[i]);
        lr_assert_eq(lr_message_send_after(me, delays[i]), (uint64_t)i); /* timer ids from 0 */
    }
    lr_assert_eq(receive_u32(), 10);
    lr_assert_eq(receive_u32(), 20);
    lr_assert_eq(receive_u32(), 30);
}

LR_TEST(timers_cancel, "timers::a_cancelled_timer_never_delivers") {
    lr_process me = lr_process_this();
    lr_message_new(0);
    lr_ser_u32(1);
    uint64_t cancelled = lr_message_send_after(me, 10);
    lr_assert(lr_timer_cancel(cancelled));  /* 1 */
    lr_assert(!lr_timer_cancel(cancelled)); /* then 0 */
    lr_message_new(0);
    lr_ser_u32(2);
    lr_message_send_after(me, 30);
    lr_assert_eq(receive_u32(), 2); /* the cancelled one would have come first */
}

/* =====================================================================================
 * registry:: (5.9, 2.4)
 * =================================================================================== */

LR_TEST(registry_put_get_remove, "registry::put_get_and_remove_with_typed_keys") {
    lr_process me = lr_process_this(), found;
    lr_assert(!lr_process_lookup("i32", "counter", &found));
    lr_process_register(me, "i32", "counter");
    lr_assert(lr_registry_get("i32/lunatic::serializer::Bincode/Process/counter", &found));
    lr_assert_eq(found.id, me.id);
    lr_assert_eq(found.node_id, 0);
    /* the same name for another message type is another key */
    lr_assert(!lr_process_lookup("alloc::string::String", "counter", &found));
    lr_assert(!lr_ap_lookup(&Counter, "counter", &found));
    lr_registry_remove("i32/lunatic::serializer::Bincode/Process/counter");
    lr_assert(!lr_process_lookup("i32", "counter", &found));
}

static void reports_its_next_tag(struct peer *p) {
    lr_mailbox_receive();
    send_u32(p->who, 0, (uint32_t)lunatic_message_get_tag());
}

LR_TEST(registry_get_or_spawn, "registry::get_or_spawn_returns_2_for_an_existing_name") {
    lr_spawn_opts named = {.link = 0, .config_id = -1,
                           .name = "i32/lunatic::serializer::Bincode/Process/worker"};
    struct peer capture = {lr_process_this()};
    lr_process first, second, found;
    lr_assert_eq(peer_spawn_opts(&named, reports_its_next_tag, capture, &first), LR_SPAWNED);
    lr_assert(lr_process_lookup("i32", "worker", &found));
    lr_assert_eq(found.id, first.id);
    lr_assert_eq(peer_spawn_opts(&named, reports_its_next_tag, capture, &second),
                 LR_NAME_ALREADY_REGISTERED);
    lr_assert_eq(second.id, first.id);
    lr_assert_eq(second.node_id, 0);
    /* no second capture was sent: the worker's next message is this one */
    send_u32(first, LR_TAG_SPECIAL(65), 0);
    lr_assert_eq(receive_u32(), 65);
}

/* =====================================================================================
 * serializer:: (5.4, B.2, correction 6)
 * =================================================================================== */

LR_TEST(ser_tuple, "serializer::a_tuple_is_laid_out_as_b2") {
    lr_message_new(0);
    lr_ser_i32(7);
    lr_ser_str("hi");
    lr_message_send(lr_process_this());
    lr_mailbox_receive();
    static const uint8_t want[14] = {7, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 'h', 'i'};
    uint8_t got[32];
    lr_assert_eq(lunatic_message_data_size(), 14);
    lr_assert_eq(lunatic_message_read_data(got, sizeof got), 14);
    lr_assert(memcmp(got, want, 14) == 0);
    lr_assert_eq(lunatic_message_read_data(got, sizeof got), 0); /* 0 at the end */
}

LR_TEST(ser_one_byte, "serializer::one_byte_reads_decode_the_same_value") {
    lr_message_new(0);
    lr_ser_i32(-5);
    lr_ser_str("h\xc3\xa9llo");
    lr_ser_option(true);
    lr_ser_u64(1ull << 40);
    lr_ser_bool(true);
    lr_ser_option(false);
    lr_message_send(lr_process_this());
    lr_mailbox_receive();
    lr_de de = {.one_byte_reads = true};
    int32_t n = lr_de_i32(&de);
    size_t len = 0;
    char *text = lr_de_string(&de, &len);
    bool some = lr_de_option(&de);
    uint64_t big = lr_de_u64(&de);
    bool flag = lr_de_bool(&de);
    bool none = lr_de_option(&de);
    lr_de_end(&de); /* the final read returns 0 */
    lr_de_unwrap(&de, "(i32, String, Option<u64>, bool, Option<u8>)");
    lr_assert_eq(n, -5);
    lr_assert_eq(len, 6);
    lr_assert(strcmp(text, "h\xc3\xa9llo") == 0);
    lr_assert(some && !none && flag);
    lr_assert_eq(big, 1ll << 40);
}

/* =====================================================================================
 * prefixes:: (1.13): #ignore_, #panic_<expected>#, `\#` escapes
 * =================================================================================== */

LR_TEST_IGNORE(prefix_ignore, "prefixes::an_ignored_test_is_not_run") {
    lr_panic("an ignored test ran");
}

LR_TEST_SHOULD_PANIC(prefix_old, "boom", "prefixes::should_panic_matches_the_pre_1_73_format") {
    lr_panic("boom: %d", 42);
}

LR_TEST_SHOULD_PANIC(prefix_new, "kaboom", "prefixes::should_panic_matches_the_1_73_format") {
    lr_panic_since_1_73("kaboom: %d", 42);
}

LR_TEST_SHOULD_PANIC(prefix_hash, "a \\# b", "prefixes::an_escaped_hash_in_the_expected_text") {
    lr_panic("found a # b here");
}

LR_TEST_SHOULD_PANIC(prefix_empty, "",
                     "prefixes::an_empty_expected_text_accepts_a_kill_by_a_linked_child") {
    lr_unit_spawn_link(panicking_child, NULL);
    lr_mailbox_receive(); /* killed here */
}

/* =====================================================================================
 * expected_failures:: (each fails on purpose)
 * =================================================================================== */

LR_TEST(fail_output, "expected_failures::prints_to_stdout_then_fails") {
    lr_println("this line was printed by expected_failures::prints_to_stdout_then_fails");
    lr_assert_eq(1 + 1, 3);
}

LR_TEST_SHOULD_PANIC(fail_returns, "boom", "expected_failures::should_panic_but_returns") {}

LR_TEST_SHOULD_PANIC(fail_wrong, "bang", "expected_failures::panics_with_another_message") {
    lr_panic("boom");
}

LR_TEST_SHOULD_PANIC(fail_child, "child text",
                     "expected_failures::a_childs_panic_text_does_not_count") {
    lr_process child = peer_spawn_link(panics_when_told, (struct peer){lr_process_this()}, NULL);
    send_u32(child, 0, 1);
    lr_mailbox_receive(); /* killed here; the panic text is in the child's stream */
}

LR_TEST(fail_killed, "expected_failures::killed_by_a_linked_child") {
    lr_unit_spawn_link(panicking_child, NULL);
    lr_mailbox_receive();
}

int main(void) {
    lr__thread_name = "main";
    return 0;
}
