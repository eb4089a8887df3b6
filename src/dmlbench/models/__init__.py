"""Networks: backbones, their input normalisation, and one module per method's model."""
