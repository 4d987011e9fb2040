# common/local.mk: what common/ adds to the build.
