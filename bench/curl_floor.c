/*
 * curl_floor: the memory floor under the http-sink connector. It links
 * Debian's libcurl (and so the 30-odd shared libraries libcurl4 depends
 * on: OpenSSL, GnuTLS through librtmp, Kerberos, LDAP, SSH, HTTP/2, ...),
 * does what the connector does before its first message (curl_global_init,
 * a multi and an easy handle) unless told "linked", and prints its own
 * private memory from /proc/self/smaps_rollup:
 *   private_dirty_kb=N private_clean_kb=N
 * The dynamic loader's relocations of those libraries are private dirty
 * pages of every process that loads them, before a line of the program runs.
 *   usage: curl_floor [linked]
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    CURLM *multi = NULL;
    CURL *easy = NULL;
    if (argc < 2 || strcmp(argv[1], "linked") != 0) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(multi = curl_multi_init()) ||
            !(easy = curl_easy_init())) {
            fprintf(stderr, "curl_floor: cannot start libcurl\n");
            return 1;
        }
    }
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f) {
        perror("curl_floor: /proc/self/smaps_rollup");
        return 1;
    }
    char line[256];
    long dirty = -1, clean = -1, v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "Private_Dirty: %ld", &v) == 1)
            dirty = v;
        else if (sscanf(line, "Private_Clean: %ld", &v) == 1)
            clean = v;
    }
    fclose(f);
    printf("private_dirty_kb=%ld private_clean_kb=%ld\n", dirty, clean);
    curl_easy_cleanup(easy);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return dirty < 0;
}
