"""``make bench``: cold start, AWS calls per request, package sizes and memory of the built functions.

One run of ``python -m local.bench`` (after ``sam build``) measures four things and prints one Markdown
report, also written to ``.aws-sam/bench.md``:

1. **Cold start** (:mod:`local.bench.coldstart`). For every function of template.yaml, a fresh python3.13
   interpreter times ``import app`` (what Lambda's init phase runs) with ``sys.path = [function dir, layer
   python dir, stdlib]`` and nothing else (``-I -S``: no site-packages, no ``PYTHON*`` variables). The
   median of ``--runs`` interpreters is compared with a baseline interpreter that runs
   ``import boto3; boto3.client("dynamodb")`` from the same layer directory. Choices:

   - The code is the build output (``.aws-sam/build/<Function>/``, ``.aws-sam/build/OtpCoreLayer/python/``),
     copied to ``.aws-sam/bench-functions`` and ``.aws-sam/bench-layer`` and precompiled with
     ``compileall``, so ``.aws-sam/build`` stays what ``sam deploy`` uploads. The built layer holds aarch64
     wheels; on any other machine its compiled extensions cannot load, so the layer is reinstalled for the
     host with the same interpreter from ``layers/otp_core/requirements.txt`` (cached by the file's hash)
     and the built ``otp_core`` package is copied in. The report says which layer was used.
   - Both are measured *with* ``.pyc`` files, while ``sam build`` ships none and Lambda's ``/opt`` and
     ``/var/task`` are read-only, so the deployed functions compile every module on every cold start. One
     extra measurement of the slowest function without ``.pyc`` shows what that costs.
   - Two environments, both with ``POWERTOOLS_TRACE_DISABLED`` and ``AWS_LAMBDA_FUNCTION_NAME`` unset:
     *local* (``LAMBDA_TASK_ROOT`` unset too) and *Lambda-like* (``LAMBDA_TASK_ROOT`` set, as Lambda sets
     it). Powertools and the X-Ray SDK decide "in Lambda" by ``LAMBDA_TASK_ROOT`` alone. Without it the
     Tracer is disabled (nothing is patched) but ``aws_xray_sdk.core`` is still imported, and outside Lambda
     that module builds its default recorder with centralized sampling, creating two botocore X-Ray clients
     at import time, which Lambda never does. With it the SDK uses its Lambda recorder and Powertools runs
     ``patch_all()`` as it does under ``Tracing: Active`` (the SDK also touches ``/tmp/.aws-xray/initialized``,
     as in Lambda). Both columns are reported; the Lambda-like one is the closer estimate.
   - Runs are interleaved (one round runs every target once, the baseline included) after a discarded
     warm-up, so file caches and background noise hit every function alike. The Lambda-like mode gets fewer
     runs (``--lambda-runs``, 5) to keep the whole benchmark within a few minutes.

2. **AWS calls per request** (:mod:`local.bench.calls`). DynamoDB Local and moto are started and provisioned
   from template.yaml as in the integration tests; the handlers run in this process from the source tree
   (the same code the build copies). A ``before-call.*.*`` hook on boto3's default session counts every API
   call. Each scenario resets the runtime and re-imports its handler module (a cold start: secrets and key
   reads), records that first request, then records a second, warm one. The whole run sets
   ``RESEND_COOLDOWN_SECONDS=0`` (resend twice without waiting) and a high per-IP send cap (every request
   comes from the event file's IP address); neither changes which calls a request makes.

3. **Package sizes** (:mod:`local.bench.sizes`): every built function directory and the real (aarch64) built
   layer, zipped with deflate as ``sam deploy`` does, plus unzipped sizes against Lambda's 250 MB limit.

4. **Memory** (:mod:`local.bench.memory`): one fresh interpreter per function (Lambda-like environment,
   pointed at the local services) imports the handler, answers a warm-up event and a second event from its
   ``events/`` file made valid (real challenge IDs and codes), and reports ``ru_maxrss``: the process's peak
   resident memory, compared with the function's ``MemorySize``.

The run is bounded (every subprocess has a timeout), uses only 127.0.0.1 (and PyPI once, for the host-arch
layer copy), and stops its services at the end.
"""
