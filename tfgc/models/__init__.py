"""Model families (one file each), the shared GAN training core (`gan.py`), and model directories (`store.py`)."""
