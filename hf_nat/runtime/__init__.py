"""Deployment runtimes: NAT models on ONNX Runtime (:mod:`hf_nat.runtime.onnx`) and the AR baseline on
CTranslate2 (:mod:`hf_nat.runtime.ctranslate2`). Both need ``pip install "hf_nat[deploy]"``."""
