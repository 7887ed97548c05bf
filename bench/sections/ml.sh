# bench/sections/ml.sh, sourced by bench/run.sh: image classification —
# the image-classification connector through sedged beside OpenCV DNN
# called directly in one process, on the same model and pictures.
#
# Models (bench/ml_model.py, made in the run): "conv", a small
# convolutional network of a camera model's shape (224x224x3 in, 4 conv
# layers, 1000 classes, random weights: its speed is the point), and the
# food demo's model (32x32x3 in, a small dense network). Pictures: 8
# camera-sized JPEGs (640x480), decoded and resized for every inference.
#
# The connector: sedged deploys a group with the model resource and the
# connector (sandboxed when the run is root, else isolation none); the
# client (bench/ml_client.py, paho) publishes a picture on the trigger
# topic, waits for its result, and so on: one image at a time. From each
# result it takes the connector's own "latency_ms" (decode, blob, forward:
# the steps bench/ml_direct times) — the inference overhead of running in
# the connector — and the time from the publish to the result — the end to
# end price of the broker, the routes, the function socket and the JSON.
# The connector's memory is its process's peak RSS (VmHWM) after the run.
# The reference, bench/ml_direct (C++, the same four OpenCV modules):
# imdecode, blobFromImage, forward, timed per image, 1 ms of sleep between
# images (as the connector waits for each request: on a busy machine a
# tight loop is scheduled worse than a process that sleeps, which made the
# reference look slower than the connector), and its own VmHWM.
# Runs alternate between the two, ML_REPEAT times; medians are reported.

ML_COUNT=${BENCH_ML_IMAGES:-200}
ML_REPEAT=${BENCH_ML_REPEAT:-3}
ML_DIRECT=$BUILD/bench/ml_direct
# BENCH_ML_THREADS: OpenCV's threads in both (the connector's "threads",
# ml_direct's ML_THREADS); 1 when unset — on a small machine shared with
# other work, two threads per inference make every figure a matter of
# where the scheduler puts them — and OpenCV's default (one per CPU) when
# set but empty.
ML_THREADS=${BENCH_ML_THREADS-1}
# The reference sleeps this long between images (untimed), as the connector
# waits for the next request: see bench/ml_direct.cpp.
ML_GAP_US=${BENCH_ML_GAP_US:-1000}

ml_group() { # NAME ARCHIVE SHA W H
    iso=""
    threads=""
    [ -n "$ML_THREADS" ] && threads=", \"threads\": $ML_THREADS"
    [ "$(id -u)" = 0 ] && [ "${BENCH_ML_ISOLATION:-sandbox}" = sandbox ] || iso=', "isolation": "none"'
    cat <<JSON
{"group": "benchml", "things": [{"name": "bench-camera"}],
 "resources": [{"id": "m", "type": "model", "url": "$2", "sha256": "$3", "dest": "/models/m"}],
 "connectors": [{"name": "$1", "type": "image-classification"$iso,
   "parameters": {"model": "m", "input_size": [$4, $5], "scale": 0.00392156862745098,
                  "top_k": 3, "trigger_topic": "bench/ml/trigger", "result_topic": "bench/ml/result"$threads}}],
 "routes": [{"source": "thing:bench-camera", "filter": "bench/ml/trigger", "target": "connector:$1"},
            {"source": "connector:$1", "filter": "bench/ml/result", "target": "thing:bench-camera"}]}
JSON
}

# ml_line NAME LINE: keep a measurement's line.
ml_line() { printf '%s\n' "$2" >>"$WORK/ml_$1.lines"; printf 'ml %s %s\n' "$1" "$2" >>"$WORK/raw.txt"; }
ml_lv() { # NAME KEY: the median over the runs
    if [ -s "$WORK/ml_$1.lines" ]; then
        tr ' ' '\n' <"$WORK/ml_$1.lines" | sed -n "s/^$2=//p" | median
    else
        echo "FAILED: $(head -n 1 "$WORK/ml_$1.fail" 2>/dev/null)"
    fi
}

# ml_connector_hwm NAME: the connector's VmHWM in kB — of its program, the
# largest of the instance's processes (sedge-sandbox, its PID 1, the
# connector).
ml_connector_hwm() {
    ctl functions --json 2>/dev/null | "$PYTHON" -c '
import json, os, sys
top = None
for f in json.load(sys.stdin)["functions"]:
    if f["name"] == "connector:" + sys.argv[1] and f["instances"]:
        top = f["instances"][0].get("pid")
parent = {}
for p in os.listdir("/proc"):
    try:
        parent[int(p)] = int(open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()[1])
    except (ValueError, OSError, IndexError):
        pass
def under(p):
    while p > 1:
        if p == top:
            return True
        p = parent.get(p, 0)
    return False
best = 0
for p in parent:
    if top and under(p):
        for line in open("/proc/%d/status" % p):
            if line.startswith("VmHWM:"):
                best = max(best, int(line.split()[1]))
print(best or "")' "$1"
}

ml_measure() { # MODEL ARCHIVE SHA ONNX W H
    m=$1
    ml_group "ml$m" "$2" "$3" "$5" "$6" >"$WORK/ml-$m.json"
    rep=0
    while [ $rep -lt "$ML_REPEAT" ]; do
        rep=$((rep + 1))
        LINE=$(ML_THREADS=$ML_THREADS ML_GAP_US=$ML_GAP_US "$ML_DIRECT" "$4" "$5" "$6" 0.00392156862745098 "$ML_COUNT" 20 "$WORK"/ml/images/*.jpg 2>&1) &&
            ml_line "direct_$m" "$LINE" || echo "$LINE" | head -n 1 >>"$WORK/ml_direct_$m.fail"
        GROUP_DOC=$WORK/ml-$m.json
        start_broker sedged
        started=$?
        GROUP_DOC=""
        if [ $started != 0 ]; then
            echo "$BFAIL" >>"$WORK/ml_sedged_$m.fail"
            note "ml: $BFAIL"
            continue
        fi
        if LINE=$(timeout 300 "$PYTHON" "$ROOT/bench/ml_client.py" "$BPORT" bench/ml/trigger \
            bench/ml/result "$ML_COUNT" 20 "$WORK"/ml/images/*.jpg 2>&1); then
            LINE="$LINE connector_hwm_kb=$(ml_connector_hwm "ml$m")"
            ml_line "sedged_$m" "$LINE"
        else
            echo "$LINE" | tail -n 1 >>"$WORK/ml_sedged_$m.fail"
            note "ml: the client failed on model $m: $(echo "$LINE" | tail -n 1)"
        fi
        sedged_counters "ml $m"
        stop_broker "ml $m"
        say "  $m round $rep: connector inference p50 $(tail -n 1 "$WORK/ml_sedged_$m.lines" 2>/dev/null | tr ' ' '\n' | sed -n 's/^infer_p50_us=//p') us, direct $(tail -n 1 "$WORK/ml_direct_$m.lines" 2>/dev/null | tr ' ' '\n' | sed -n 's/^p50_us=//p') us"
    done
}

ml_rows() { # MODEL LABEL
    m=$1
    d50=$(ml_lv "direct_$m" p50_us)
    r=$(ratio "$(ml_lv "sedged_$m" infer_p50_us)" "$d50")
    row "$2: inference in the connector (decode, blob, forward) p50 (us)" \
        "$(fmt "$(ml_lv "sedged_$m" infer_p50_us)" 0)" "$(fmt "$d50" 0)" "$r" "<= 1.05x direct" \
        "$(met "<=" 1.05 "$(printf '%s' "$r" | tr -d x)")"
    abs_row "$2: inference in the connector p99 (us)" "$(ml_lv "sedged_$m" infer_p99_us)" \
        "$(ml_lv "direct_$m" p99_us)" 0 "" "" ""
    abs_row "$2: trigger -> result through sedged, end to end p50 (us)" \
        "$(ml_lv "sedged_$m" e2e_p50_us)" "$d50" 0 "" "" ""
    abs_row "$2: trigger -> result end to end p99 (us)" "$(ml_lv "sedged_$m" e2e_p99_us)" \
        "$(ml_lv "direct_$m" p99_us)" 0 "" "" ""
    abs_row "$2: images/s, one at a time, end to end" "$(ml_lv "sedged_$m" rate)" \
        "$(ml_lv "direct_$m" rate)" 1 "" "" ""
    abs_row "$2: peak RSS (MB), the connector vs the direct process" \
        "$(ml_lv "sedged_$m" connector_hwm_kb | awk '{ if ($1 + 0 > 0) printf "%.1f", $1 / 1024; else print $0 }')" \
        "$(ml_lv "direct_$m" rss_kb | awk '{ if ($1 + 0 > 0) printf "%.1f", $1 / 1024; else print $0 }')" 1 "" "" ""
}

section_ml() {
    ML_LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    say "ml: image classification, the connector through sedged vs OpenCV DNN directly ($ML_COUNT images x $ML_REPEAT)"
    [ -x "$ML_DIRECT" ] || cmake --build "$BUILD" --target ml_direct connector_image-classification >/dev/null 2>&1
    mkdir -p "$WORK/ml"
    if ! models=$("$PYTHON" "$ROOT/bench/ml_model.py" "$WORK/ml" 2>&1); then
        note "ml: bench/ml_model.py failed: $(printf '%s' "$models" | tail -n 1)"
        models=""
    fi
    tar xzf "$WORK/ml/conv.tar.gz" -C "$WORK/ml" model.onnx 2>/dev/null && mv "$WORK/ml/model.onnx" "$WORK/ml/conv-model.onnx"
    tar xzf "$WORK/ml/food/food-model.tar.gz" -C "$WORK/ml" model.onnx 2>/dev/null && mv "$WORK/ml/model.onnx" "$WORK/ml/food-model.onnx"
    printf '%s\n' "$models" >"$WORK/ml-models.txt"
    while read -r name archive sha bytes input; do
        [ -n "$name" ] || continue
        printf '%s %s\n' "$bytes" "$input" >"$WORK/ml_$name.info"
        w=${input%x*}
        h=${input#*x}
        ml_measure "$name" "$archive" "$sha" "$WORK/ml/$name-model.onnx" "$w" "$h"
    done <"$WORK/ml-models.txt"
    table_header "OpenCV DNN direct"
    for m in conv food; do
        read -r bytes input <"$WORK/ml_$m.info" 2>/dev/null || { bytes="?"; input="?"; }
        kb=$(awk -v b="$bytes" 'BEGIN { if (b + 0 > 0) printf "%.0f", b / 1024; else print "?" }')
        case $m in
        conv) label="conv net ($input in, 1000 classes, ONNX $kb KB)" ;;
        food) label="food demo model ($input in, 3 classes, ONNX $kb KB)" ;;
        esac
        ml_rows "$m" "$label"
    done
    info "Pictures: 8 JPEGs of 640x480 (decoded and resized for every inference, in both). OpenCV threads: ${ML_THREADS:-its default} on this $(nproc)-CPU machine, shared with other work: load average $ML_LOAD_BEFORE at the start of the section, $(cut -d' ' -f1-3 /proc/loadavg) at its end; with the machine that busy, single runs differ by 2x either way and the medians of $ML_REPEAT runs still move by tens of percent."
    describe <<DESC
The image-classification connector through sedged vs OpenCV DNN called directly
in one process (bench/ml_direct: imdecode, blobFromImage, forward per image,
1 ms of untimed sleep between images as the connector waits between requests),
same model, same pictures (8 camera-sized 640x480 JPEGs), one image at a time,
$ML_COUNT images after 20 untimed, median of $ML_REPEAT runs alternating the two.
"Inference in the connector" is the connector's own \`latency_ms\` (the same three
steps); "end to end" is bench/ml_client.py's (paho, QoS 0) time from publishing
the picture on the trigger topic to receiving the result on the result topic:
the broker, the routes, the function socket and the JSON both ways on top.
Models made in the run by bench/ml_model.py: a 4-layer convolutional network
(224x224 in, 1000 classes, random weights) and the food demo's model. Peak RSS:
the connector's VmHWM after the run vs ml_direct's. Sandboxed when run as root.
DESC
}
