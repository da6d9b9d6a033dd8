"""What a run measures about itself: provenance (versions, code revision, device), peak memory and the saved-tensor
meter. It imports nothing of dd-bench's above the storage layer, so a method, the evaluator and the teacher and expert
stores all import it downward."""
