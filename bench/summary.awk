# bench/summary.awk: the one table of every row of a benchmark report
# (bench/results/latest.md's sections), and the rows where sedged loses.
#
#   awk -v mode=latest -f bench/summary.awk SECTIONS.md   the summary for latest.md
#   awk -v mode=readme -f bench/summary.awk SECTIONS.md   README's copy: the rows
#                                                         with a target, and the losses
#
# A section is "## Title", its "Measured ..., sedged COMMIT, in ..." line and
# its table: | metric | sedged | REFERENCE | sedged/REFERENCE | target | met |.
# sedged loses a row when it misses the row's target, or when its ratio to
# the reference is on the wrong side of 1: below for rates and shares (the
# metric's unit ends in "/s" or is "%"), above for times and sizes (us, ms,
# s, MB, KB). Rows without a reference or a unit that says which way is
# better are not compared.

function trim(s) { gsub(/^ +| +$/, "", s); return s }

# 1: higher is better, -1: lower is better, 0: unknown.
function direction(metric,    m, u) {
    if (match(metric, /\((msg|deliveries|updates|invocations|gets)?\/s[);]/) ||
        match(metric, /\([a-z]+\/s\)/) || match(metric, /invocations\/s/) ||
        match(metric, /\(%\)/))
        return 1
    if (match(metric, /\((us|ms|s|MB|KB)[);]/) || match(metric, /\((us|ms|s|MB|KB) /))
        return -1
    return 0
}

function number(s) { sub(/x$/, "", s); return (s ~ /^[0-9.]+$/) ? s + 0 : -1 }

BEGIN { n = 0; sections = 0 }

/^## / {
    section = substr($0, 4)
    sub(/:.*/, "", section)
    refname = "reference"
    next
}

/^Measured / {
    commit = $0
    if (match(commit, /sedged [^,]*, in/)) {
        commit = substr(commit, RSTART + 7, RLENGTH - 11)
    } else {
        commit = "?"
    }
    when = $0
    sub(/^Measured /, "", when)
    sub(/, sedged .*/, "", when)
    sections++
    sec_name[sections] = section
    sec_commit[sections] = commit
    sec_when[sections] = when
    next
}

/^\| / {
    line = $0
    sub(/^\| /, "", line)
    sub(/ \|$/, "", line)
    k = split(line, f, / \| /)
    if (k < 6) next
    if (f[1] == "metric") { refname = f[3]; next }
    if (f[1] ~ /^---/) next
    n++
    r_section[n] = section
    r_metric[n] = trim(f[1])
    r_sedged[n] = trim(f[2])
    r_ref[n] = trim(f[3])
    r_refname[n] = refname
    r_ratio[n] = trim(f[4])
    r_target[n] = trim(f[5])
    r_met[n] = trim(f[6])
    next
}

function loses(i,    d, q) {
    if (r_met[i] ~ /no/) return "misses its target (" r_target[i] ")"
    q = number(r_ratio[i])
    d = direction(r_metric[i])
    if (q < 0 || d == 0 || r_ref[i] == "none" || r_ref[i] == "-") return ""
    if (d > 0 && q < 0.995) return "below " r_refname[i] " (" r_ratio[i] ")"
    if (d < 0 && q > 1.005) return "above " r_refname[i] " (" r_ratio[i] ")"
    return ""
}

function one_commit(    i, c) {
    c = sec_commit[1]
    for (i = 2; i <= sections; i++) if (sec_commit[i] != c) return ""
    return c
}

function losses(    i, why, any) {
    any = 0
    for (i = 1; i <= n; i++) {
        why = loses(i)
        if (why == "") continue
        any = 1
        printf "- %s: %s — sedged %s, %s %s: %s\n", r_section[i], r_metric[i], r_sedged[i],
            r_refname[i], r_ref[i], why
    }
    if (!any) print "- none"
}

END {
    c = one_commit()
    if (mode == "readme") {
        print "| | sedged | reference | sedged/reference | target | met |"
        print "| --- | ---: | ---: | ---: | --- | --- |"
        for (i = 1; i <= n; i++) {
            if (r_target[i] == "-" && loses(i) == "") continue
            ref = r_ref[i]
            if (ref != "-" && ref != "none") ref = ref " " r_refname[i]
            printf "| %s | %s | %s | %s | %s | %s |\n", r_metric[i], r_sedged[i], ref,
                r_ratio[i], r_target[i], r_met[i]
        }
        print ""
        print "Where sedged loses (it misses a target, or does worse than its reference):"
        print ""
        losses()
        print ""
        if (c != "")
            printf "All at sedged %s, measured %s.\n", c, sec_when[1]
        else
            print "**Not one commit** yet: the sections of bench/results/latest.md were measured at different commits; `make bench` measures them all at once and copies them here."
        exit
    }
    print "## Summary: every row"
    print ""
    if (c != "") {
        printf "Every row below was measured at sedged %s.\n", c
    } else {
        printf "**Not one commit**: the sections below were measured at different commits ("
        for (i = 1; i <= sections; i++)
            printf "%s%s at %s, %s", (i > 1 ? "; " : ""), sec_name[i], sec_commit[i], sec_when[i]
        print "); `make bench` measures them all at once."
    }
    print "Rows whose reference is `none` or `-` have nothing to be compared with (mosquitto"
    print "has no shadows, no functions, no deployments); their target, when they have one,"
    print "is what they stand against."
    print ""
    print "| section | metric | sedged | reference | sedged/reference | target | met |"
    print "| --- | --- | ---: | ---: | ---: | --- | --- |"
    for (i = 1; i <= n; i++) {
        ref = r_ref[i]
        if (ref != "-" && ref != "none") ref = ref " (" r_refname[i] ")"
        printf "| %s | %s | %s | %s | %s | %s | %s |\n", r_section[i], r_metric[i], r_sedged[i],
            ref, r_ratio[i], r_target[i], r_met[i]
    }
    print ""
    print "### Where sedged loses"
    print ""
    print "It misses the row's target, or does worse than the reference measured beside it."
    print ""
    losses()
    print ""
}
