"""Every import of HOSTAPI.md Appendix A is defined with exactly its type."""

from __future__ import annotations

import pytest

from hostapi.linking import IMPLEMENTED
from hostapi.signatures import APPENDIX_A, FuncSig, ValType, parse_signature
from supervisor._engine import CompileError, wasm_host

from .guests import import_decl


def test_appendix_a_lists_140_functions_in_12_namespaces() -> None:
    assert len(APPENDIX_A) == 140
    assert len({ns for ns, _ in APPENDIX_A}) == 12


def test_the_linker_defines_every_function_with_its_type() -> None:
    host = wasm_host()
    assert host.linker.defined == APPENDIX_A
    imports = "\n".join(
        import_decl(ns, name, sig, f"f{i}")
        for i, ((ns, name), sig) in enumerate(APPENDIX_A.items())
    )
    module = host.compile(f"(module {imports})".encode())
    assert len(module.imports) == 140


@pytest.mark.parametrize(("ns", "name"), sorted(APPENDIX_A)[::7])
def test_an_import_with_a_different_type_is_refused(ns: str, name: str) -> None:
    sig = APPENDIX_A[(ns, name)]
    wrong = FuncSig((*sig.params, ValType.I32), sig.results)
    with pytest.raises(CompileError, match=r"incompatible import type|types incompatible"):
        wasm_host().compile(f"(module {import_decl(ns, name, wrong, 'f')})".encode())


def test_an_unknown_import_is_refused_with_its_name() -> None:
    with pytest.raises(CompileError, match="lunatic::process::nonsense"):
        wasm_host().compile(b'(module (import "lunatic::process" "nonsense" (func)))')


def test_namespace_declarations_match_appendix_a() -> None:
    for key, spec in IMPLEMENTED.items():
        assert APPENDIX_A[key] == spec.sig, spec.qualname


def test_signature_lines_parse() -> None:
    assert parse_signature("get_or_spawn (i32, i64) -> i32") == (
        "get_or_spawn",
        FuncSig((ValType.I32, ValType.I64), (ValType.I32,)),
    )
    assert str(FuncSig((ValType.F64,), ())) == "(f64)"
    with pytest.raises(ValueError, match="malformed"):
        parse_signature("nonsense")


def test_every_function_is_implemented_and_no_not_supported_yet_stub_remains() -> None:
    assert set(IMPLEMENTED) == set(APPENDIX_A)
    for (ns, name), spec in IMPLEMENTED.items():
        assert spec.sig == APPENDIX_A[(ns, name)], f"{ns}::{name}"
