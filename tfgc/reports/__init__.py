"""Reports: every figure tfgc publishes comes from one of these commands, each a small module on one writer.

- writer: the destination (OUT/NAME.md and OUT/NAME/), the command line, machine and versions, progress,
  results.json and results.csv, the Markdown's provenance lines and the plots
- measure: real files coded, decoded and compared (bpp from bytes; PSNR, MS-SSIM, detail ratio, FID/KID)
- eval (python -m tfgc eval), bench (tfgc bench, with its comparison page from html), fidelity (tfgc fidelity),
  sc (tfgc selective), sr (tfgc superres)
"""
