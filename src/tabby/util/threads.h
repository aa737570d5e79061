// How many worker threads "all cores" means.
#pragma once

namespace tabby {

// The machine's cores (at least 1): what a thread setting of 0 stands for.
int default_thread_count();

}  // namespace tabby
