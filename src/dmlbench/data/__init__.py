"""Dataset readers (one per original archive layout), manifests, decoding, transforms and samplers."""
