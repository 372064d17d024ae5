//! Shared support for end-to-end tests: locating the built binaries, temp homes, polling with deadlines.
