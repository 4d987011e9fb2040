EXTRA_DIST += bench/run
# bench/local.mk: what bench/ adds to the build.
