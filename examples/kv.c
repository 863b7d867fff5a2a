/* A key-value server: TCP in front, SQLite behind, one process per job.
 *
 *   lunatrio run --dir DIR examples/build/kv.wasm [PORT [DATABASE]]
 *
 * The root process owns the database (lunatic::sqlite; DATABASE defaults to
 * ":memory:" and must lie inside a preopened directory). It spawns a linked
 * acceptor that listens on 127.0.0.1:PORT (0: any free port) and prints
 * "kv: listening on 127.0.0.1:<port>". Every connection gets a session
 * process of its own, its stream handed over in a message; a session turns
 * each line it reads into a request message to the root and writes back the
 * reply. The protocol, one command per line:
 *
 *   SET key value   ->  OK
 *   GET key         ->  VALUE value   or   NOT_FOUND
 *   DEL key         ->  DELETED n
 *   COUNT           ->  COUNT n
 *   SHUTDOWN        ->  BYE (and the server stops)
 *   anything else   ->  ERR ...
 *
 * A session that fails ends alone; the acceptor failing (say, the port is
 * taken) takes the root down through their link. */
#include <stdio.h>
#include <stdlib.h>
#include "lunatic.h"

#define REQUEST 1 /* tag of a session's request: [reply_to u64][line] */
#define REPLY 2   /* tag of the root's reply: the text to send back */
#define LINE_MAX_LEN 4096

/* The guest allocates what the SQLite functions return (HOSTAPI.md 2.13). */
__attribute__((export_name("lunatic_alloc")))
void *lunatic_alloc(uint32_t len) { return malloc(len ? len : 1); }

/* -- errors ----------------------------------------------------------------- */

/* Print lunatic error `id` after `what` on stderr and drop it. */
static void report_error(const char *what, uint64_t id) {
    uint32_t n = lunatic_error_string_size(id);
    char *text = malloc(n + 1);
    lunatic_error_to_string(id, text);
    text[n] = 0;
    fprintf(stderr, "kv: %s: %s\n", what, text);
    fflush(stderr);
    free(text);
    lunatic_error_drop(id);
}

/* -- the acceptor and the sessions --------------------------------------------- */

static int write_all(uint64_t stream, const char *data, uint32_t len) {
    while (len > 0) {
        uint32_t iovec[2] = {(uint32_t)(uintptr_t)data, len};
        uint64_t n;
        if (lunatic_tcp_write_vectored(stream, iovec, 1, &n) != 0) {
            lunatic_error_drop(n);
            return -1;
        }
        data += n;
        len -= (uint32_t)n;
    }
    return 0;
}

/* Send one line to the database process and write its reply to the client. */
static int round_trip(uint64_t stream, uint64_t db, const char *line, uint32_t len) {
    uint64_t me = lunatic_process_id();
    lunatic_create_data(REQUEST, 8 + len);
    lunatic_write_data(&me, 8);
    lunatic_write_data(line, len);
    lunatic_send(db);
    int64_t tags[1] = {REPLY};
    lunatic_receive(tags, 1, LUNATIC_NO_TIMEOUT);
    uint32_t size = (uint32_t)lunatic_data_size();
    char *reply = malloc(size ? size : 1);
    lunatic_read_data(reply, size);
    int r = write_all(stream, reply, size);
    free(reply);
    return r;
}

__attribute__((export_name("session")))
void session(int64_t db) {
    lunatic_receive(NULL, 0, LUNATIC_NO_TIMEOUT); /* the stream, in a message */
    uint64_t stream = lunatic_take_tcp_stream(0);
    static char buf[LINE_MAX_LEN];
    uint32_t have = 0;
    for (;;) {
        uint64_t n;
        if (lunatic_tcp_read(stream, buf + have, sizeof buf - have, &n) != 0) {
            lunatic_error_drop(n); /* the client went away */
            break;
        }
        if (n == 0)
            break; /* end of stream */
        have += (uint32_t)n;
        char *start = buf, *end = buf + have, *nl;
        while ((nl = memchr(start, '\n', (size_t)(end - start))) != NULL) {
            uint32_t len = (uint32_t)(nl - start);
            if (len > 0 && start[len - 1] == '\r')
                len--;
            if (round_trip(stream, (uint64_t)db, start, len) != 0)
                goto done;
            start = nl + 1;
        }
        have = (uint32_t)(end - start);
        memmove(buf, start, have);
        if (have == sizeof buf) {
            const char *msg = "ERR line too long\n";
            write_all(stream, msg, (uint32_t)strlen(msg));
            break;
        }
    }
done:
    lunatic_drop_tcp_stream(stream);
}

__attribute__((export_name("acceptor")))
void acceptor(int64_t db, int32_t port) {
    const uint8_t loopback[4] = {127, 0, 0, 1};
    uint64_t listener;
    if (lunatic_tcp_bind(4, loopback, (uint32_t)port, 0, 0, &listener) != 0) {
        char what[64];
        snprintf(what, sizeof what, "cannot listen on 127.0.0.1:%d", (int)port);
        report_error(what, listener);
        __builtin_trap(); /* the link takes the root down too */
    }
    uint64_t addrs;
    uint32_t type, flow, scope;
    uint8_t addr[16];
    uint16_t bound = 0;
    lunatic_tcp_local_addr(listener, &addrs);
    lunatic_resolve_next(addrs, &type, addr, &bound, &flow, &scope);
    lunatic_drop_dns_iterator(addrs);
    printf("kv: listening on 127.0.0.1:%u\n", (unsigned)bound);
    fflush(stdout);
    for (;;) {
        uint64_t stream, peer;
        if (lunatic_tcp_accept(listener, &stream, &peer) != 0) {
            report_error("accept failed", stream);
            continue;
        }
        lunatic_drop_dns_iterator(peer);
        uint8_t params[17];
        spawn_param(params, LUNATIC_TYPE_I64, db);
        uint64_t child = spawn_params("session", params, 1, 0);
        lunatic_create_data(0, 0);
        lunatic_push_tcp_stream(stream); /* moves it out of this process */
        lunatic_send(child);
    }
}

/* -- the database (the root process) -------------------------------------------- */

static uint64_t conn, set_stmt, get_stmt, del_stmt, count_stmt;

static uint64_t prepare(const char *sql) {
    return lunatic_sqlite_prepare(conn, sql, (uint32_t)strlen(sql));
}

/* Bind text values to parameters ?1..?n (a bincode BindList of
 * (Numeric(index), Text(value)) pairs). */
static void bind_texts(uint64_t stmt, const char **texts, const uint32_t *lens, uint32_t n) {
    uint32_t size = 8;
    for (uint32_t i = 0; i < n; i++)
        size += 4 + 8 + 4 + 8 + lens[i];
    uint8_t *buf = malloc(size), *p = buf;
    uint64_t count = n;
    memcpy(p, &count, 8), p += 8;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t key_kind = 1, value_kind = 2; /* Numeric, Text */
        uint64_t index = i + 1, len = lens[i];
        memcpy(p, &key_kind, 4), p += 4;
        memcpy(p, &index, 8), p += 8;
        memcpy(p, &value_kind, 4), p += 4;
        memcpy(p, &len, 8), p += 8;
        memcpy(p, texts[i], lens[i]), p += lens[i];
    }
    lunatic_sqlite_bind(stmt, buf, size);
    free(buf);
}

static void reply(uint64_t to, const char *text, uint32_t len) {
    lunatic_create_data(REPLY, len);
    lunatic_write_data(text, len);
    lunatic_send(to);
}

static void reply_str(uint64_t to, const char *text) { reply(to, text, (uint32_t)strlen(text)); }

/* Split "WORD rest" at the first space. */
static int command_is(const char *line, uint32_t len, const char *word, const char **rest,
                      uint32_t *rest_len) {
    uint32_t w = (uint32_t)strlen(word);
    if (len < w || memcmp(line, word, w) != 0 || (len > w && line[w] != ' '))
        return 0;
    *rest = len > w ? line + w + 1 : line + len;
    *rest_len = len > w ? len - w - 1 : 0;
    return 1;
}

/* Serve one request; returns 0 when the server should stop. */
static int serve(uint64_t to, const char *line, uint32_t len) {
    const char *arg;
    uint32_t arg_len;
    char out[64];
    if (command_is(line, len, "SET", &arg, &arg_len)) {
        const char *space = memchr(arg, ' ', arg_len);
        if (space == NULL || space == arg) {
            reply_str(to, "ERR usage: SET key value\n");
            return 1;
        }
        const char *texts[2] = {arg, space + 1};
        uint32_t lens[2] = {(uint32_t)(space - arg), arg_len - (uint32_t)(space - arg) - 1};
        bind_texts(set_stmt, texts, lens, 2);
        lunatic_sqlite_step(set_stmt);
        lunatic_sqlite_reset(set_stmt);
        reply_str(to, "OK\n");
    } else if (command_is(line, len, "GET", &arg, &arg_len) && arg_len > 0) {
        bind_texts(get_stmt, &arg, &arg_len, 1);
        if (lunatic_sqlite_step(get_stmt) == LUNATIC_SQLITE_ROW) {
            uint32_t size;
            uint8_t *value = lunatic_sqlite_read_column(get_stmt, 0, &size);
            /* a bincode SqliteValue: u32 variant (2: Text), u64 length, bytes */
            uint32_t variant;
            uint64_t n;
            memcpy(&variant, value, 4);
            memcpy(&n, value + 4, 8);
            if (variant != 2 || size < 12 || n > size - 12) {
                free(value);
                lunatic_sqlite_reset(get_stmt);
                reply_str(to, "ERR the stored value is not text\n");
                return 1;
            }
            char *text = malloc(n + 7);
            memcpy(text, "VALUE ", 6);
            memcpy(text + 6, value + 12, n);
            text[6 + n] = '\n';
            reply(to, text, (uint32_t)n + 7);
            free(text);
            free(value);
        } else {
            reply_str(to, "NOT_FOUND\n");
        }
        lunatic_sqlite_reset(get_stmt);
    } else if (command_is(line, len, "DEL", &arg, &arg_len) && arg_len > 0) {
        bind_texts(del_stmt, &arg, &arg_len, 1);
        lunatic_sqlite_step(del_stmt);
        lunatic_sqlite_reset(del_stmt);
        snprintf(out, sizeof out, "DELETED %u\n", (unsigned)lunatic_sqlite_changes(conn));
        reply_str(to, out);
    } else if (command_is(line, len, "COUNT", &arg, &arg_len) && arg_len == 0) {
        lunatic_sqlite_step(count_stmt);
        uint32_t size;
        uint8_t *value = lunatic_sqlite_read_column(count_stmt, 0, &size);
        int64_t n; /* variant 4: Integer(i64) */
        memcpy(&n, value + 4, 8);
        free(value);
        lunatic_sqlite_reset(count_stmt);
        snprintf(out, sizeof out, "COUNT %lld\n", (long long)n);
        reply_str(to, out);
    } else if (command_is(line, len, "SHUTDOWN", &arg, &arg_len) && arg_len == 0) {
        reply_str(to, "BYE\n");
        return 0;
    } else {
        reply_str(to, "ERR unknown command (SET, GET, DEL, COUNT, SHUTDOWN)\n");
    }
    return 1;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    const char *path = argc > 2 ? argv[2] : ":memory:";
    if (lunatic_sqlite_open(path, (uint32_t)strlen(path), &conn) != 0) {
        report_error("cannot open the database", conn);
        return 1;
    }
    const char *schema = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)";
    if (lunatic_sqlite_execute(conn, schema, (uint32_t)strlen(schema)) != 0) {
        fprintf(stderr, "kv: cannot create the table in %s\n", path);
        return 1;
    }
    set_stmt = prepare("INSERT INTO kv (key, value) VALUES (?1, ?2) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    get_stmt = prepare("SELECT value FROM kv WHERE key = ?1");
    del_stmt = prepare("DELETE FROM kv WHERE key = ?1");
    count_stmt = prepare("SELECT count(*) FROM kv");

    uint8_t params[2 * 17];
    spawn_param(params, LUNATIC_TYPE_I64, (int64_t)lunatic_process_id());
    spawn_param(params + 17, LUNATIC_TYPE_I32, port);
    if (spawn_params("acceptor", params, 2, 1) == 0) {
        fprintf(stderr, "kv: cannot spawn the acceptor\n");
        return 1;
    }
    static char line[8 + LINE_MAX_LEN];
    for (;;) {
        int64_t tags[1] = {REQUEST};
        lunatic_receive(tags, 1, LUNATIC_NO_TIMEOUT);
        uint32_t size = (uint32_t)lunatic_data_size();
        if (size < 8 || size > sizeof line)
            continue;
        lunatic_read_data(line, size);
        uint64_t to;
        memcpy(&to, line, 8);
        if (!serve(to, line + 8, size - 8))
            break;
    }
    printf("kv: %s closed\n", path);
    return 0;
}
