"""The Spark engine: graph build and Swing on PySpark, for logs that outgrow one machine.

Needs the ``spark`` extra (``pip install 'graphrec[spark]'``) and a JVM. The embedded engine is
the default everywhere; these functions give the same results on the same data (Swing: exactly
when no sampling cap binds, since the two engines sample heavy notes with different generators).

Running on a cluster
--------------------
The functions take a ``SparkSession`` (default: a local one) and Spark DataFrames or paths, so a
cluster job is a short driver script::

    # swing_job.py
    from pyspark.sql import SparkSession
    from graphrec.spark import swing_dataframe

    spark = SparkSession.builder.appName("graphrec-swing").getOrCreate()
    pairs = spark.read.parquet("s3a://bucket/logs/interactions/")        # user_id, note_id, ...
    swing_dataframe(pairs, alpha=1.0, beta=0.5, top_k=100, max_users_per_item=2000) \\
        .write.mode("overwrite").parquet("s3a://bucket/graphrec/swing/")

submitted with ``spark-submit --master yarn --deploy-mode cluster --py-files graphrec.zip
swing_job.py`` (or ``pip install graphrec`` on the executors' image), with the object-store
connector on the classpath (e.g. ``--packages org.apache.hadoop:hadoop-aws:<your Hadoop version>``
and credentials from the cluster's instance profile). :func:`build_edges` likewise returns the
graph's relations as Spark DataFrames to write as parquet; :func:`build_graph_spark` collects them
into a :class:`graphrec.graph.HeteroGraph` when they fit on the driver.
"""

from graphrec.spark.engine import build_edges, build_graph_spark, get_spark, swing_dataframe, swing_spark

__all__ = ["build_edges", "build_graph_spark", "get_spark", "swing_dataframe", "swing_spark"]
