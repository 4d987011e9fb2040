EXTRA_DIST += bench/run
# bench/local.mk: what bench/ adds to the build.
EXTRA_DIST += bench/run-quality.sh bench/run-train-speed.sh bench/sasrec_torch.py
