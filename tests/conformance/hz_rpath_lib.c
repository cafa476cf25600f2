/* tests/conformance/hz_rpath_lib.c: found only through the caller's RPATH. */
int hz_rpath_answer(void);
int hz_rpath_answer(void) { return 42; }
