"""Every git access of the publisher: this package, and nowhere else.

`repo`: the lists' repository found and trusted, commits by revision. `trees`: `GitTree` reads
the lists folder from a commit (what `publish` publishes), `StagedTree` from the index (what
the pre-commit hook validates), both `publisher.lists.tree.Tree`s; the files that would *not*
be published (dirty or untracked) and blame of single lines for `plan` and `explain`. `sync`:
fetch + fast-forward-only pull for `watch` (which refuses to move the publisher's own checkout
past anything but the lists, and drops the watch's own refresh commits upstream lacks: `refreshes`
tells them apart), and the push of those commits. `requests`: the branches `publisher web` files requests on,
committed beside the work tree with git's plumbing commands, and their review. `commits`: an
ordinary commit of given files on the current branch (`refresh-spf`), nothing else touched.

GitPython keeps `git cat-file` helpers and caches alive for as long as a `Repo`
lives, which leaks in a long-running `watch`; every function here opens its
own `Repo` with `with Repo(...) as repo:` and closes it before returning.
"""

from publisher.publish.vcs.commits import FALLBACK_AUTHOR, commit_files, commit_identity, uncommitted
from publisher.publish.vcs.repo import (
    ZERO_SHA,
    CommitInfo,
    ListsRepo,
    UntrustedRepo,
    commit_exists,
    commit_info,
    find_repo,
)
from publisher.publish.vcs.requests import (
    ACCEPTED_REFS,
    REJECTED_REFS,
    REQUEST_BRANCHES,
    MergeConflict,
    RequestRef,
    advance_branch,
    archive_accepted,
    archive_rejected,
    branch_tip,
    commit_beside,
    commit_body,
    common_dir,
    current_branch,
    git_user,
    merge_commit,
    request_refs,
    request_text,
)
from publisher.publish.vcs.sync import (
    PushResult,
    SyncResult,
    has_remote,
    holds_running_code,
    hooks_dir,
    push_head,
    staged_changes,
    sync,
)
from publisher.publish.vcs.trees import BlameLine, DirtyFile, GitTree, StagedTree, _BlobTree, blame_lines, dirty_files

__all__ = [
    "ACCEPTED_REFS",
    "FALLBACK_AUTHOR",
    "REJECTED_REFS",
    "REQUEST_BRANCHES",
    "ZERO_SHA",
    "BlameLine",
    "CommitInfo",
    "DirtyFile",
    "GitTree",
    "ListsRepo",
    "MergeConflict",
    "PushResult",
    "RequestRef",
    "StagedTree",
    "SyncResult",
    "UntrustedRepo",
    "_BlobTree",
    "advance_branch",
    "archive_accepted",
    "archive_rejected",
    "blame_lines",
    "branch_tip",
    "commit_beside",
    "commit_body",
    "commit_exists",
    "commit_files",
    "commit_identity",
    "commit_info",
    "common_dir",
    "current_branch",
    "dirty_files",
    "find_repo",
    "git_user",
    "has_remote",
    "holds_running_code",
    "hooks_dir",
    "merge_commit",
    "push_head",
    "request_refs",
    "request_text",
    "staged_changes",
    "sync",
    "uncommitted",
]
