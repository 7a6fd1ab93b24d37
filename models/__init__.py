"""The shipped detector (garbagewatch.onnx, its card README.md) and the tools that make and measure it.

Kept import-free on purpose: the edge imports this package only to find the ONNX file next to it
(edge.config.default_model_path), and must not pay for cv2, ultralytics or torch. The public
surface is the submodules:

- models.cli: `garbagewatch model train|export|eval|synthetic-recall|quantize|errors` (main)
- models.training: the recipe (Recipe, build_dataset, train, export_onnx)
- models.evaluate: AP50 per class and for exposed garbage (evaluate, Report, ClassRecords, pad_16x9)
- models.errors: false positives and misses by kind (analyse_errors)
- models.synthetic_recall: recall on rendered scenes never trained on (synthetic_recall)
- models.quantize: static int8 QDQ copy (quantize_int8)
- models.speed: images per second, model only and with pre/post-processing (measure)
- models.synthetic, models.augment: the street renderer and the photometric degradations
"""

__all__: list[str] = []
