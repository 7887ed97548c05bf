/*
 * sanitizer_options: linked into the example and test functions of a
 * sanitized build (SEDGE_SANITIZE). LeakSanitizer stops the world with
 * ptrace, which the sandbox's seccomp filter refuses, so at exit it would
 * fail and change the function's exit status; these functions run without
 * the leak check, with AddressSanitizer's other checks and UBSan intact.
 */
const char *__asan_default_options(void);

const char *__asan_default_options(void)
{
    return "detect_leaks=0";
}
