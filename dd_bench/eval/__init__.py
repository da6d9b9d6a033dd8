"""The shared evaluator: frozen protocols that train and score (the `mtt` and `kd` recipes), batched multi-seed
training, reference rows."""

from dd_bench.eval.evaluate import check_compatible, evaluate
from dd_bench.eval.kd import KDProtocol
from dd_bench.eval.mtt import MTTProtocol
from dd_bench.eval.protocol import PROTOCOLS, EvalProtocol, custom_protocol, get_protocol
from dd_bench.eval.reference import reference_result
from dd_bench.eval.result import EvalResult

__all__ = ["EvalResult", "EvalProtocol", "KDProtocol", "MTTProtocol", "PROTOCOLS", "check_compatible",
           "custom_protocol", "evaluate", "get_protocol", "reference_result"]
