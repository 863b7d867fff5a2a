;; Wasm workers for examples/tree/tree.toml.
(module
  (import "lunatic::process" "sleep_ms" (func $sleep (param i64)))
  (import "lunatic::message" "receive" (func $receive (param i32 i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "flaky worker: crashing\n")

  ;; serve forever: wait for messages and ignore them
  (func (export "server")
    (loop $l (drop (call $receive (i32.const 0) (i32.const 0) (i64.const -1))) (br $l)))

  ;; run for `ms` milliseconds, then crash (a trap: reason failure)
  (func (export "flaky") (param $ms i32)
    (call $sleep (i64.extend_i32_u (local.get $ms)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 23))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    unreachable)

  ;; work for `ms` milliseconds, then finish normally
  (func (export "job") (param $ms i32)
    (call $sleep (i64.extend_i32_u (local.get $ms)))))
