/*
 * program: whether a function's program can start, found out at deploy
 * time instead of at its first invocation — the file runs, a script's
 * interpreter (#!) exists, an ELF program is for this machine and every
 * shared library it needs (DT_NEEDED, recursively) is found the way the
 * dynamic loader looks for it: DT_RPATH, DT_RUNPATH (with $ORIGIN), the
 * directories of /etc/ld.so.conf, then the default ones. In a sandbox each
 * of those files must also be visible there (the system directories or
 * the code directory); the C SDK's library beside sedged is the one
 * exception the core fixes itself, by binding that one file.
 */
#include "internal.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LIBRARIES 128      /* distinct libraries followed per program */
#define MAX_PROGRAM_HEADERS 64 /* more is not a program the loader takes */
#define MAX_DYNAMIC 1024       /* entries of the dynamic section read */
#define MAX_STRTAB (1u << 20)
#define MAX_SEARCH_DIRS 64
#define MAX_SCRIPT_DEPTH 4 /* #! of a #! ... as the kernel allows */

typedef struct {
    const program_view_t *view;
    char (*names)[256]; /* libraries already followed */
    size_t name_count;
    char dirs[MAX_SEARCH_DIRS][256]; /* ld.so.conf and the defaults */
    size_t dir_count;
    uint16_t machine; /* e_machine of sedged itself */
    char *err;
    size_t errlen;
} check_t;

static bool has_prefix_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Does the sandbox show this host file (by its real path)? */
static bool visible(const check_t *c, const char *path)
{
    if (!c->view->sandbox)
        return true;
    char *real = realpath(path, NULL);
    if (!real)
        return false;
    static const char *const system_dirs[] = {"/usr", "/etc",   "/bin",   "/sbin",
                                              "/lib", "/lib32", "/lib64", "/libx32"};
    bool shown = false;
    for (size_t i = 0; i < ARRAY_LEN(system_dirs) && !shown; i++)
        shown = has_prefix_dir(real, system_dirs[i]);
    if (!shown && c->view->code_dir)
        shown = has_prefix_dir(real, c->view->code_dir);
    free(real);
    return shown;
}

static void add_search_dir(check_t *c, const char *dir)
{
    if (dir[0] != '/' || c->dir_count == MAX_SEARCH_DIRS || strlen(dir) >= sizeof c->dirs[0])
        return;
    for (size_t i = 0; i < c->dir_count; i++)
        if (strcmp(c->dirs[i], dir) == 0)
            return;
    snprintf(c->dirs[c->dir_count++], sizeof c->dirs[0], "%s", dir);
}

/* The directories of ld.so.conf ("include GLOB" followed, depth 2). */
static void read_ld_conf(check_t *c, const char *file, int depth)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "#\n")] = '\0';
        char *p = line + strspn(line, " \t");
        bool include = strncmp(p, "include", 7) == 0 && (p[7] == ' ' || p[7] == '\t');
        if (include) {
            p += 7 + strspn(p + 7, " \t");
        }
        p[strcspn(p, " \t")] = '\0';
        if (include && depth < 2) {
            const char *pattern = p;
            glob_t g;
            if (glob(pattern, 0, NULL, &g) == 0)
                for (size_t i = 0; i < g.gl_pathc; i++)
                    read_ld_conf(c, g.gl_pathv[i], depth + 1);
            globfree(&g);
        } else if (p[0] == '/') {
            add_search_dir(c, p);
        }
    }
    fclose(f);
}

static bool read_at(int fd, void *buf, size_t len, uint64_t off)
{
    return off <= (uint64_t)INT64_MAX && pread(fd, buf, len, (off_t)off) == (ssize_t)len;
}

/* The parts of an ELF file that decide whether it can be loaded. */
typedef struct {
    bool is_64;
    uint16_t machine;
    uint64_t phoff;
    uint16_t phnum, phentsize;
} elf_header_t;

typedef struct {
    uint32_t type;
    uint64_t offset, vaddr, filesz;
} elf_segment_t;

static bool elf_header(int fd, elf_header_t *h)
{
    unsigned char ident[EI_NIDENT];
    if (!read_at(fd, ident, sizeof ident, 0) || memcmp(ident, ELFMAG, SELFMAG) != 0)
        return false;
    h->is_64 = ident[EI_CLASS] == ELFCLASS64;
    if (h->is_64) {
        Elf64_Ehdr e;
        if (!read_at(fd, &e, sizeof e, 0))
            return false;
        *h = (elf_header_t){true, e.e_machine, e.e_phoff, e.e_phnum, e.e_phentsize};
        return e.e_phentsize == sizeof(Elf64_Phdr);
    }
    Elf32_Ehdr e;
    if (!read_at(fd, &e, sizeof e, 0))
        return false;
    *h = (elf_header_t){false, e.e_machine, e.e_phoff, e.e_phnum, e.e_phentsize};
    return e.e_phentsize == sizeof(Elf32_Phdr);
}

static bool elf_segment(int fd, const elf_header_t *h, uint16_t i, elf_segment_t *s)
{
    uint64_t off = h->phoff + (uint64_t)i * h->phentsize;
    if (h->is_64) {
        Elf64_Phdr p;
        if (!read_at(fd, &p, sizeof p, off))
            return false;
        *s = (elf_segment_t){p.p_type, p.p_offset, p.p_vaddr, p.p_filesz};
        return true;
    }
    Elf32_Phdr p;
    if (!read_at(fd, &p, sizeof p, off))
        return false;
    *s = (elf_segment_t){p.p_type, p.p_offset, p.p_vaddr, p.p_filesz};
    return true;
}

static uint16_t own_machine(void)
{
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    elf_header_t h = {0};
    bool ok = fd >= 0 && elf_header(fd, &h);
    if (fd >= 0)
        close(fd);
    return ok ? h.machine : 0;
}

/* What the dynamic section says: needed libraries and search paths, as
 * offsets into the string table. */
typedef struct {
    uint64_t strtab_vaddr, strsz;
    uint64_t needed[64];
    size_t needed_count;
    int64_t rpath, runpath; /* -1: none */
    char *strtab;
} elf_dynamic_t;

static bool elf_dynamic(int fd, const elf_header_t *h, const elf_segment_t *dyn,
                        const elf_segment_t *loads, size_t load_count, elf_dynamic_t *d)
{
    size_t entsize = h->is_64 ? sizeof(Elf64_Dyn) : sizeof(Elf32_Dyn);
    size_t count = dyn->filesz / entsize;
    if (count > MAX_DYNAMIC)
        count = MAX_DYNAMIC;
    d->rpath = d->runpath = -1;
    for (size_t i = 0; i < count; i++) {
        int64_t tag;
        uint64_t val;
        if (h->is_64) {
            Elf64_Dyn e;
            if (!read_at(fd, &e, sizeof e, dyn->offset + i * entsize))
                return false;
            tag = e.d_tag, val = e.d_un.d_val;
        } else {
            Elf32_Dyn e;
            if (!read_at(fd, &e, sizeof e, dyn->offset + i * entsize))
                return false;
            tag = e.d_tag, val = e.d_un.d_val;
        }
        if (tag == DT_NULL)
            break;
        if (tag == DT_STRTAB)
            d->strtab_vaddr = val;
        else if (tag == DT_STRSZ)
            d->strsz = val;
        else if (tag == DT_NEEDED && d->needed_count < ARRAY_LEN(d->needed))
            d->needed[d->needed_count++] = val;
        else if (tag == DT_RPATH)
            d->rpath = (int64_t)val;
        else if (tag == DT_RUNPATH)
            d->runpath = (int64_t)val;
    }
    if (!d->strsz || d->strsz > MAX_STRTAB)
        return d->needed_count == 0;
    for (size_t i = 0; i < load_count; i++) {
        const elf_segment_t *l = &loads[i];
        if (d->strtab_vaddr < l->vaddr || d->strtab_vaddr + d->strsz > l->vaddr + l->filesz)
            continue;
        d->strtab = malloc(d->strsz + 1);
        if (!d->strtab || !read_at(fd, d->strtab, d->strsz, d->strtab_vaddr - l->vaddr + l->offset))
            return false;
        d->strtab[d->strsz] = '\0';
        return true;
    }
    return false;
}

static const char *dyn_string(const elf_dynamic_t *d, int64_t off)
{
    return off >= 0 && (uint64_t)off < d->strsz ? d->strtab + off : NULL;
}

static bool followed(check_t *c, const char *name)
{
    for (size_t i = 0; i < c->name_count; i++)
        if (strcmp(c->names[i], name) == 0)
            return true;
    if (c->name_count < MAX_LIBRARIES)
        snprintf(c->names[c->name_count++], sizeof c->names[0], "%s", name);
    return false;
}

/* Would the loader take this file for a library of ours? As ld.so does,
 * a file for another machine (a multiarch directory's, say) is passed
 * over and the search goes on; what is not ELF is left for check_elf to
 * report. */
static bool library_fits(const check_t *c, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    elf_header_t h;
    bool elf = elf_header(fd, &h);
    close(fd);
    return !elf || !c->machine || h.machine == c->machine;
}

/* Look for `name` in a ':'-separated list, $ORIGIN being `origin`. */
static bool search_list(const check_t *c, const char *list, const char *origin, const char *name,
                        char *out, size_t outlen)
{
    while (list && *list) {
        size_t n = strcspn(list, ":");
        char dir[512];
        snprintf(dir, sizeof dir, "%.*s", (int)n, list);
        char expanded[1024];
        if (strncmp(dir, "$ORIGIN", 7) == 0)
            snprintf(expanded, sizeof expanded, "%s%s", origin, dir + 7);
        else if (strncmp(dir, "${ORIGIN}", 9) == 0)
            snprintf(expanded, sizeof expanded, "%s%s", origin, dir + 9);
        else
            snprintf(expanded, sizeof expanded, "%s", dir);
        int w = snprintf(out, outlen, "%s/%s", expanded, name);
        if (w > 0 && (size_t)w < outlen && library_fits(c, out))
            return true;
        list += n;
        if (*list == ':')
            list++;
    }
    return false;
}

static bool find_library(check_t *c, const elf_dynamic_t *d, const char *origin, const char *name,
                         char *out, size_t outlen)
{
    if (strchr(name, '/')) {
        snprintf(out, outlen, "%s", name);
        return access(out, F_OK) == 0;
    }
    const char *runpath = dyn_string(d, d->runpath);
    if (!runpath && search_list(c, dyn_string(d, d->rpath), origin, name, out, outlen))
        return true;
    if (search_list(c, runpath, origin, name, out, outlen))
        return true;
    for (size_t i = 0; i < c->dir_count; i++) {
        int w = snprintf(out, outlen, "%s/%s", c->dirs[i], name);
        if (w > 0 && (size_t)w < outlen && library_fits(c, out))
            return true;
    }
    return false;
}

NODISCARD static sedge_err check_file(check_t *c, const char *path, const char *needed_by,
                                      int depth);

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

NODISCARD static sedge_err check_library(check_t *c, const elf_dynamic_t *d, const char *origin,
                                         const char *name, const char *program)
{
    char path[1024];
    if (!find_library(c, d, origin, name, path, sizeof path)) {
        if (c->view->sdk_library && strncmp(name, "libsedge.so", 11) == 0)
            snprintf(c->err, c->errlen,
                     "%s needs %s, which it cannot find: link it with -Wl,-rpath,%.300s (where "
                     "sedged's copy is), install the SDK (cmake --install), or link libsedge.a",
                     program, name,
                     c->view->sdk_library_dir ? c->view->sdk_library_dir : "sedged's directory");
        else
            snprintf(c->err, c->errlen,
                     "%s needs the shared library %s, which is not installed (searched its "
                     "rpath, /etc/ld.so.conf and the default directories)",
                     program, name);
        return SEDGE_ERR_NOT_FOUND;
    }
    if (!visible(c, path)) {
        if (c->view->sdk_library && same_file(path, c->view->sdk_library)) {
            if (program_binds_add(c->view->binds, path))
                return SEDGE_ERR_NOMEM;
        } else {
            snprintf(c->err, c->errlen,
                     "%s needs %s, found at %s, which the sandbox does not show: put it in the "
                     "function's code directory (linked with an rpath of $ORIGIN) or install it "
                     "under /usr",
                     program, name, path);
            return SEDGE_ERR_NOT_FOUND;
        }
    }
    return check_file(c, path, program, MAX_SCRIPT_DEPTH);
}

NODISCARD static sedge_err check_elf(check_t *c, int fd, const char *path, const char *needed_by)
{
    elf_header_t h;
    if (!elf_header(fd, &h) || h.phnum > MAX_PROGRAM_HEADERS) {
        snprintf(c->err, c->errlen, "%s is not a program this machine can run (a damaged ELF file)",
                 path);
        return SEDGE_ERR_INVALID;
    }
    if (c->machine && h.machine != c->machine) {
        snprintf(c->err, c->errlen,
                 "%s is a program for another kind of machine (ELF machine %u, this one is %u)",
                 path, h.machine, c->machine);
        return SEDGE_ERR_INVALID;
    }
    elf_segment_t loads[MAX_PROGRAM_HEADERS], dyn = {0}, interp = {0};
    size_t load_count = 0;
    for (uint16_t i = 0; i < h.phnum; i++) {
        elf_segment_t s;
        if (!elf_segment(fd, &h, i, &s))
            return SEDGE_OK; /* what the loader makes of it, it will say */
        if (s.type == PT_LOAD)
            loads[load_count++] = s;
        else if (s.type == PT_DYNAMIC)
            dyn = s;
        else if (s.type == PT_INTERP)
            interp = s;
    }
    if (interp.type == PT_INTERP && !needed_by) {
        char loader[256];
        size_t n = interp.filesz < sizeof loader ? interp.filesz : sizeof loader - 1;
        if (read_at(fd, loader, n, interp.offset)) {
            loader[n] = '\0';
            if (access(loader, X_OK) != 0 || !visible(c, loader)) {
                snprintf(c->err, c->errlen, "%s needs the program loader %s, which %s", path,
                         loader,
                         access(loader, X_OK) ? "is not installed" : "the sandbox does not show");
                return SEDGE_ERR_NOT_FOUND;
            }
        }
    }
    if (dyn.type != PT_DYNAMIC)
        return SEDGE_OK; /* statically linked */
    elf_dynamic_t d = {0};
    if (!elf_dynamic(fd, &h, &dyn, loads, load_count, &d)) {
        free(d.strtab);
        return SEDGE_OK;
    }
    char origin[1024];
    char *real = realpath(path, NULL);
    snprintf(origin, sizeof origin, "%s", real ? real : path);
    free(real);
    char *slash = strrchr(origin, '/');
    if (slash)
        *slash = '\0';
    sedge_err err = SEDGE_OK;
    for (size_t i = 0; i < d.needed_count && !err; i++) {
        const char *name = dyn_string(&d, (int64_t)d.needed[i]);
        if (name && !followed(c, name))
            err = check_library(c, &d, origin, name, needed_by ? needed_by : path);
    }
    free(d.strtab);
    return err;
}

/* "#!INTERPRETER [ARG]": the interpreter must exist, and start. */
NODISCARD static sedge_err check_script(check_t *c, int fd, const char *path, int depth)
{
    char line[256];
    ssize_t n = pread(fd, line, sizeof line - 1, 0);
    if (n < 2)
        return SEDGE_OK;
    line[n] = '\0';
    line[strcspn(line, "\n")] = '\0';
    char *interp = line + 2 + strspn(line + 2, " \t");
    interp[strcspn(interp, " \t")] = '\0';
    if (interp[0] != '/' || access(interp, X_OK) != 0) {
        snprintf(c->err, c->errlen, "%s is a script for %s, which is not installed", path,
                 interp[0] ? interp : "(no interpreter)");
        return SEDGE_ERR_NOT_FOUND;
    }
    if (!visible(c, interp)) {
        snprintf(c->err, c->errlen,
                 "%s is a script for %s, which the sandbox does not show (it shows the system "
                 "directories and the function's code directory)",
                 path, interp);
        return SEDGE_ERR_NOT_FOUND;
    }
    if (depth <= 0)
        return SEDGE_OK;
    return check_file(c, interp, NULL, depth - 1);
}

NODISCARD static sedge_err check_file(check_t *c, const char *path, const char *needed_by,
                                      int depth)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(c->err, c->errlen, "cannot read %s: %s", path, strerror(errno));
        return SEDGE_ERR_IO;
    }
    unsigned char magic[4] = {0};
    sedge_err err = SEDGE_OK;
    if (pread(fd, magic, sizeof magic, 0) >= 2 && magic[0] == '#' && magic[1] == '!')
        err = needed_by ? SEDGE_OK : check_script(c, fd, path, depth);
    else if (memcmp(magic, ELFMAG, SELFMAG) == 0)
        err = check_elf(c, fd, path, needed_by);
    close(fd);
    return err;
}

sedge_err program_check(const char *program, const program_view_t *view, char *err, size_t errlen)
{
    check_t *c = calloc(1, sizeof *c);
    char(*names)[256] = calloc(MAX_LIBRARIES, sizeof *names);
    if (!c || !names) {
        free(c);
        free(names);
        snprintf(err, errlen, "out of memory");
        return SEDGE_ERR_NOMEM;
    }
    c->view = view;
    c->names = names;
    c->err = err;
    c->errlen = errlen;
    c->machine = own_machine();
    read_ld_conf(c, "/etc/ld.so.conf", 0);
    static const char *const defaults[] = {"/lib", "/usr/lib", "/lib64", "/usr/lib64"};
    for (size_t i = 0; i < ARRAY_LEN(defaults); i++)
        add_search_dir(c, defaults[i]);
    sedge_err rc = check_file(c, program, NULL, MAX_SCRIPT_DEPTH);
    free(names);
    free(c);
    return rc;
}

bool program_visible(const program_view_t *view, const char *path)
{
    check_t c = {.view = view};
    return visible(&c, path);
}

sedge_err program_binds_add(program_binds_t *b, const char *path)
{
    for (size_t i = 0; i < b->count; i++)
        if (strcmp(b->paths[i], path) == 0)
            return SEDGE_OK;
    if (b->count == ARRAY_LEN(b->paths))
        return SEDGE_ERR_FULL;
    b->paths[b->count] = strdup(path);
    if (!b->paths[b->count])
        return SEDGE_ERR_NOMEM;
    b->count++;
    return SEDGE_OK;
}

void program_binds_free(program_binds_t *b)
{
    for (size_t i = 0; i < b->count; i++)
        free(b->paths[i]);
    b->count = 0;
}
