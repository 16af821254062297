import os, time, uuid, shutil
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL="http://127.0.0.1:5089")
shutil.rmtree("/tmp/exp/h4", ignore_errors=True)
os.environ["ASSAY_HOME"]="/tmp/exp/h4"
import boto3
s3 = boto3.client("s3")
b="g"+uuid.uuid4().hex[:8]; s3.create_bucket(Bucket=b)
from assay import api
import assay.store.remote_backends as rb
orig_call = rb.S3Backend._call
stats = {}
def timed_call(self, method, **kw):
    t=time.time(); r = orig_call(self, method, **kw); stats.setdefault(method, []).append(time.time()-t); return r
rb.S3Backend._call = timed_call
import assay.store.remote as rm
orig_hash = rm.hash_file
def th(*a, **k):
    t=time.time(); r=orig_hash(*a, **k); stats.setdefault("hash", []).append(time.time()-t); return r
rm.hash_file = th
api.context("b"); api.remote("b","b",f"s3://{b}/a")
t=time.time(); api.add("b","d","/work/main/bench/.work/data/big-1024MiB.bin"); print("add", time.time()-t)
api.commit("b","d"); os.sync()
stats.clear()
t=time.time(); api.push("b"); print("push", time.time()-t)
print({k: (len(v), round(sum(v),2), round(max(v),2)) for k,v in stats.items()})
b2="g"+uuid.uuid4().hex[:8]; s3.create_bucket(Bucket=b2)
t=time.time(); s3.upload_file("/work/main/bench/.work/data/big-1024MiB.bin", b2, "x"); print("boto3", time.time()-t)
