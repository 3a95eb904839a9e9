# Opens a document in LibreOffice (headless, through UNO), appends text
# and saves it in place the way the desktop program does (File > Save),
# then quits. Usage: office_save.py PROFILE_DIR DOCUMENT TEXT...
# Each TEXT is one save: the document is opened, changed and saved again.
import os
import subprocess
import sys
import time

import uno
from com.sun.star.beans import PropertyValue

profile, path, texts = sys.argv[1], sys.argv[2], sys.argv[3:]
port = 20000 + os.getpid() % 20000
office = subprocess.Popen([
    "soffice", "--headless", "--invisible", "--norestore", "--nologo", "--nodefault",
    "-env:UserInstallation=" + uno.systemPathToFileUrl(profile),
    "--accept=socket,host=127.0.0.1,port=%d;urp;" % port,
])
local = uno.getComponentContext()
resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
ctx = None
for _ in range(600):  # the first start makes the profile: up to a minute
    try:
        ctx = resolver.resolve("uno:socket,host=127.0.0.1,port=%d;urp;StarOffice.ComponentContext" % port)
        break
    except Exception:
        if office.poll() is not None:
            sys.exit("soffice exited with %d" % office.returncode)
        time.sleep(0.1)
if ctx is None:
    office.kill()
    sys.exit("soffice did not answer")
desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
hidden = PropertyValue()
hidden.Name, hidden.Value = "Hidden", True
status = 0
for text in texts:
    doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(path), "_blank", 0, (hidden,))
    if doc is None:
        print("cannot open", path, file=sys.stderr)
        status = 2
        break
    body = doc.getText()
    body.insertString(body.getEnd(), text, False)
    doc.store()
    doc.close(True)
try:
    desktop.terminate()
except Exception:
    pass  # the bridge goes away as soffice quits
try:
    office.wait(timeout=60)
except subprocess.TimeoutExpired:
    office.kill()
sys.exit(status)
