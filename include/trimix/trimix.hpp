#pragma once
/// \file trimix.hpp
/// Everything trimix offers: mask policies, the reference, plans and the attention kernels.

#include <trimix/config.hpp>
#include <trimix/element.hpp>
#include <trimix/mask.hpp>
#include <trimix/block_sparse.hpp>
#include <trimix/problem.hpp>
#include <trimix/plan.hpp>
#include <trimix/softmax.hpp>
#include <trimix/engine_portable.hpp>
#include <trimix/engine.hpp>
#include <trimix/kernel.hpp>
#include <trimix/combine.hpp>
#include <trimix/attention.hpp>
#include <trimix/reference.hpp>
