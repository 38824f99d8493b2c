"""Extremes over the global batch when a model trains on several replicas.

Under `tf.distribute`, each replica calls a layer on its share of the global
batch. A range observed from that share alone depends on how many replicas
split the batch; these helpers combine the replicas' own extremes so that every
replica sees those of the whole global batch, as one device would.

`tf.distribute.ReduceOp` has no MIN / MAX, so the per-replica values are
all-gathered (a static [replicas, ...] tensor, which XLA accepts) and reduced.
"""
import tensorflow as tf


def _gathered(values):
    """[replicas, ...] of every replica's `values`, or None on a single replica."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None  # cross-replica context, default strategy or one replica
    gathered = context.all_gather(values[tf.newaxis], axis=0)
    # all_gather drops the static shape, which the callers (and XLA) need.
    gathered.set_shape([context.num_replicas_in_sync] + values.shape.as_list())
    return gathered


def global_max(values):
    """Element-wise maximum of `values` (any shape) over all replicas in sync;
    `values` itself outside replica context or on one replica."""
    gathered = _gathered(values)
    return values if gathered is None else tf.reduce_max(gathered, axis=0)


def global_min(values):
    """Element-wise minimum of `values` over all replicas in sync (see global_max)."""
    gathered = _gathered(values)
    return values if gathered is None else tf.reduce_min(gathered, axis=0)
