#pragma once
/// \file trimix.hpp
/// Everything trimix offers: mask policies (static and block-sparse), the reference, plans, the
/// attention kernels, the dynamic-sparsity estimators and the layer schedule.

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
#include <trimix/estimate.hpp>
#include <trimix/schedule.hpp>
