"""The file format (`bitstream`), host-side entropy coding (`entropy`), image I/O (`io`) and the codec API (`api`)."""
