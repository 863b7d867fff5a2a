"""Every ``lunatic::*`` import with its Wasm signature (HOSTAPI.md Appendix A).

This is the project's own copy of the list, kept as text so it can be read
side by side with the specification. A module is compiled against the full
set, so every entry must be defined with exactly this type, implemented or
not; ``tests/test_signatures.py`` checks the linker against it.
"""

from __future__ import annotations

import enum
import re
from typing import Final, NamedTuple

__all__ = ["APPENDIX_A", "FuncSig", "ValType", "parse_signature"]


class ValType(enum.IntEnum):
    """Wasm value types, numbered as ``wasmtime_valkind_t``."""

    I32 = 0
    I64 = 1
    F32 = 2
    F64 = 3
    V128 = 4

    def __str__(self) -> str:
        return self.name.lower()


class FuncSig(NamedTuple):
    """A function type: parameter and result types."""

    params: tuple[ValType, ...]
    results: tuple[ValType, ...]

    def __str__(self) -> str:
        params = ", ".join(map(str, self.params))
        if not self.results:
            return f"({params})"
        return f"({params}) -> {', '.join(map(str, self.results))}"


_TYPES = {"i32": ValType.I32, "i64": ValType.I64, "f32": ValType.F32, "f64": ValType.F64}
_LINE = re.compile(r"^(\w+)\s*\(([^)]*)\)\s*(?:->\s*(\w+))?$")


def parse_signature(text: str) -> tuple[str, FuncSig]:
    """Parse ``"name (i64, i32) -> i32"`` into the name and its :class:`FuncSig`."""
    m = _LINE.match(text.strip())
    if m is None:
        raise ValueError(f"malformed signature line: {text!r}")
    name, params, result = m.groups()
    ps = tuple(_TYPES[p.strip()] for p in params.split(",") if p.strip())
    rs = (_TYPES[result],) if result else ()
    return name, FuncSig(ps, rs)


_TABLE: Final = {
    "lunatic::error": """
        string_size (i64) -> i32
        to_string (i64, i32)
        drop (i64)
    """,
    "lunatic::message": """
        create_data (i64, i64)
        write_data (i32, i32) -> i32
        read_data (i32, i32) -> i32
        seek_data (i64)
        get_tag () -> i64
        get_process_id () -> i64
        data_size () -> i64
        push_module (i64) -> i64
        take_module (i64) -> i64
        push_tcp_stream (i64) -> i64
        take_tcp_stream (i64) -> i64
        push_tls_stream (i64) -> i64
        take_tls_stream (i64) -> i64
        push_udp_socket (i64) -> i64
        take_udp_socket (i64) -> i64
        send (i64) -> i32
        send_receive_skip_search (i64, i64, i64) -> i32
        receive (i32, i32, i64) -> i32
    """,
    "lunatic::process": """
        compile_module (i32, i32, i32) -> i32
        drop_module (i64)
        create_config () -> i64
        drop_config (i64)
        config_set_max_memory (i64, i64)
        config_get_max_memory (i64) -> i64
        config_set_max_fuel (i64, i64)
        config_get_max_fuel (i64) -> i64
        config_can_compile_modules (i64) -> i32
        config_set_can_compile_modules (i64, i32)
        config_can_create_configs (i64) -> i32
        config_set_can_create_configs (i64, i32)
        config_can_spawn_processes (i64) -> i32
        config_set_can_spawn_processes (i64, i32)
        spawn (i64, i64, i64, i32, i32, i32, i32, i32) -> i32
        get_or_spawn (i32, i32, i64, i64, i64, i32, i32, i32, i32, i32, i32) -> i32
        sleep_ms (i64)
        die_when_link_dies (i32)
        process_id () -> i64
        environment_id () -> i64
        link (i64, i64)
        unlink (i64)
        monitor (i64)
        stop_monitoring (i64)
        kill (i64)
        exists (i64) -> i32
    """,
    "lunatic::registry": """
        put (i32, i32, i64, i64)
        get (i32, i32, i32, i32) -> i32
        remove (i32, i32)
    """,
    "lunatic::timer": """
        send_after (i64, i64) -> i64
        cancel_timer (i64) -> i32
    """,
    "lunatic::version": """
        major () -> i32
        minor () -> i32
        patch () -> i32
    """,
    "lunatic::trap": """
        catch (i32, i32) -> i32
    """,
    "lunatic::wasi": """
        config_add_environment_variable (i64, i32, i32, i32, i32)
        config_add_command_line_argument (i64, i32, i32)
        config_preopen_dir (i64, i32, i32)
    """,
    "lunatic::distributed": """
        nodes_count () -> i32
        get_nodes (i32, i32) -> i32
        node_id () -> i64
        module_id () -> i64
        spawn (i64, i64, i64, i32, i32, i32, i32, i32) -> i32
        send (i64, i64) -> i32
        send_receive_skip_search (i64, i64, i64, i64) -> i32
        exec_lookup_nodes (i32, i32, i32, i32, i32) -> i32
        copy_lookup_nodes_results (i64, i32, i32, i32) -> i32
        test_root_cert (i32) -> i32
        default_server_certificates (i32, i32, i32, i32, i32) -> i32
        sign_node (i32, i32, i32, i32, i32, i32, i32) -> i32
    """,
    "lunatic::metrics": """
        counter (i32, i32, i64)
        increment_counter (i32, i32)
        gauge (i32, i32, f64)
        increment_gauge (i32, i32, f64)
        decrement_gauge (i32, i32, f64)
        histogram (i32, i32, f64)
    """,
    "lunatic::networking": """
        resolve (i32, i32, i64, i32) -> i32
        drop_dns_iterator (i64)
        resolve_next (i64, i32, i32, i32, i32, i32) -> i32
        tcp_bind (i32, i32, i32, i32, i32, i32) -> i32
        drop_tcp_listener (i64)
        tcp_local_addr (i64, i32) -> i32
        tcp_accept (i64, i32, i32) -> i32
        tcp_connect (i32, i32, i32, i32, i32, i64, i32) -> i32
        tcp_peer_addr (i64, i32) -> i32
        drop_tcp_stream (i64)
        clone_tcp_stream (i64) -> i64
        tcp_write_vectored (i64, i32, i32, i32) -> i32
        tcp_peek (i64, i32, i32, i32) -> i32
        tcp_read (i64, i32, i32, i32) -> i32
        set_read_timeout (i64, i64)
        set_write_timeout (i64, i64)
        set_peek_timeout (i64, i64)
        get_read_timeout (i64) -> i64
        get_write_timeout (i64) -> i64
        get_peek_timeout (i64) -> i64
        tcp_flush (i64, i32) -> i32
        tls_bind (i32, i32, i32, i32, i32, i32, i32, i32, i32, i32) -> i32
        drop_tls_listener (i64)
        tls_local_addr (i64, i32) -> i32
        tls_accept (i64, i32, i32) -> i32
        tls_connect (i32, i32, i32, i64, i32, i32, i32) -> i32
        drop_tls_stream (i64)
        clone_tls_stream (i64) -> i64
        tls_write_vectored (i64, i32, i32, i32) -> i32
        tls_read (i64, i32, i32, i32) -> i32
        set_tls_read_timeout (i64, i64)
        set_tls_write_timeout (i64, i64)
        get_tls_read_timeout (i64) -> i64
        get_tls_write_timeout (i64) -> i64
        tls_flush (i64, i32) -> i32
        udp_bind (i32, i32, i32, i32, i32, i32) -> i32
        udp_local_addr (i64, i32) -> i32
        udp_peer_addr (i64, i32) -> i32
        drop_udp_socket (i64)
        udp_receive (i64, i32, i32, i32) -> i32
        udp_receive_from (i64, i32, i32, i32, i32) -> i32
        udp_connect (i64, i32, i32, i32, i32, i32, i64, i32) -> i32
        clone_udp_socket (i64) -> i64
        set_udp_socket_broadcast (i64, i32)
        get_udp_socket_broadcast (i64) -> i32
        set_udp_socket_ttl (i64, i32)
        get_udp_socket_ttl (i64) -> i32
        udp_send_to (i64, i32, i32, i32, i32, i32, i32, i32, i32) -> i32
        udp_send (i64, i32, i32, i32) -> i32
    """,
    "lunatic::sqlite": """
        open (i32, i32, i32) -> i64
        query_prepare (i64, i32, i32) -> i64
        execute (i64, i32, i32) -> i32
        bind_value (i64, i32, i32)
        sqlite3_changes (i64) -> i32
        statement_reset (i64)
        last_error (i64, i32) -> i32
        sqlite3_finalize (i64)
        sqlite3_step (i64) -> i32
        read_column (i64, i32, i32) -> i32
        column_names (i64, i32) -> i32
        read_row (i64, i32) -> i32
        column_count (i64) -> i32
        column_name (i64, i32, i32) -> i32
    """,
}


def _build() -> dict[tuple[str, str], FuncSig]:
    out: dict[tuple[str, str], FuncSig] = {}
    for namespace, block in _TABLE.items():
        for line in block.strip().splitlines():
            name, sig = parse_signature(line)
            out[(namespace, name)] = sig
    return out


#: ``(namespace, name) -> FuncSig`` for all 140 functions of lunatic 0.13.2.
APPENDIX_A: Final[dict[tuple[str, str], FuncSig]] = _build()
