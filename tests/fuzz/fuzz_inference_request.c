/*
 * libFuzzer target: the image-classification connector's requests
 * (connectors/image-classification/ic_request.c): any payload is read as a
 * request, with a small image cap, and whatever it held is turned into a
 * result document (the id goes into JSON) and an error one.
 */
#include "ic_request.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ic_request_t r;
    char why[300];
    if (ic_request_parse(data, size, 4096, &r, why, sizeof why)) {
        if (r.kind == IC_IMAGE && (r.image_len == 0 || r.image_len > 4096))
            abort(); /* the cap holds */
        float scores[4] = {0.5f, 0.25f, 0.125f, 0.125f};
        size_t order[4];
        size_t k = ic_top_k(scores, 4, 3, 0.1f, order);
        ic_label_score_t results[3];
        for (size_t i = 0; i < k; i++)
            results[i] = (ic_label_score_t){"label", scores[order[i]]};
        json_t *doc = ic_result(results, k, r.id, 1.0, NULL);
        if (!doc)
            abort();
        json_decref(doc);
        ic_request_free(&r);
    } else {
        if (!why[0] || memchr(why, '\0', sizeof why) == NULL)
            abort(); /* a failure always says why */
        json_t *doc = ic_error_result(why, NULL, NULL);
        json_decref(doc);
    }
    return 0;
}
