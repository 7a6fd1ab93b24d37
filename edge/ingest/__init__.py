"""Camera -> compressed packets (into the ring buffer) and, when due, decoded frames."""

from edge.ingest.rtsp import AnalysisFrame, CameraStats, CameraStream, backoff_delay

__all__ = ["AnalysisFrame", "CameraStats", "CameraStream", "backoff_delay"]
