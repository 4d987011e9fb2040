# packaging/local.mk: what packaging/ adds to the build.
