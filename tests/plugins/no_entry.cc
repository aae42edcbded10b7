// A shared object without needle's entry symbol.
extern "C" __attribute__((visibility("default"))) int not_a_needle_plugin(void) { return 42; }
