"""The model: the MobileNetV2-ResNet hybrid, its files and versions, and the engines that run it.

mobilenet + hybrid (the network), presets (preprocessing), checkpoint (model files), registry (versions),
imaging (decoding), classifier (torch engine), onnx_export + onnx_engine (light engine), engine (which one).
"""
