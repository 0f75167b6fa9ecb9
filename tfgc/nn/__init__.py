"""Building blocks: layers, the quantizer, the categorical entropy model, discriminators, perceptual features.

Nothing here knows about training loops or files.
"""
