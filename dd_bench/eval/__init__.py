"""The shared evaluator: frozen protocols, batched multi-seed training, reference rows."""

from dd_bench.eval.evaluate import EvalResult, check_compatible, evaluate
from dd_bench.eval.protocol import PROTOCOLS, EvalProtocol, custom_protocol, get_protocol
from dd_bench.eval.reference import reference_result

__all__ = ["EvalResult", "EvalProtocol", "PROTOCOLS", "check_compatible", "custom_protocol", "evaluate",
           "get_protocol", "reference_result"]
