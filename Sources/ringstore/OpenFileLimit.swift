import Glibc

/// Raises this process's soft open-file limit to its hard limit.
///
/// Why: a store keeps up to half the soft limit of stream files open (see
/// `Configuration.maxOpenFiles`), and the usual soft limit of 1,024 would cap
/// that at 512, so that with thousands of streams the splitter and `$all`
/// readers reopen files all the time. Servers commonly do the same at start.
enum OpenFileLimit {
    static func raiseToHardLimit() {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(resource, &limit)  // best effort: the store works with any limit
    }
}
