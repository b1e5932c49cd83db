"""A throwaway certificate authority for tests over HTTPS, made with the
openssl command-line tool.

    from tlsca import CA
    ca = CA(os.path.join(env_dir, "ca"))
    ca.cert_file                       # the CA certificate: healsync's ca_file
    cert, key = ca.server()            # valid for 127.0.0.1 and localhost
    cert, key = ca.server("wrong", hosts=["wrong.example"])   # another host name
    cert, key = ca.server("expired", expired=True)            # valid in 2020 only
    other = CA(path2)                  # a second, unrelated CA (untrusted case)

Keys are EC P-256, so making a CA and three certificates takes well under a
second. Every file lands under the given directory.
"""

import os
import subprocess


def _run(args, cwd):
    p = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (args[0], p.stderr.decode(errors="replace")))


class CA:
    def __init__(self, directory, name="healsync test CA"):
        self.dir = directory
        os.makedirs(os.path.join(self.dir, "issued"), exist_ok=True)
        self.key_file = os.path.join(self.dir, "ca.key")
        self.cert_file = os.path.join(self.dir, "ca.pem")
        _run(["req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-nodes", "-keyout", self.key_file, "-out", self.cert_file, "-days", "30",
              "-subj", "/CN=" + name,
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], self.dir)
        # `openssl ca` keeps a small database; it is what lets a test pick
        # any validity period (-startdate/-enddate), an expired one included.
        open(os.path.join(self.dir, "index.txt"), "w").close()
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("1000\n")
        self.config = os.path.join(self.dir, "ca.cnf")
        with open(self.config, "w") as f:
            f.write("[ca]\ndefault_ca = test\n"
                    "[test]\ndir = %s\ndatabase = $dir/index.txt\nserial = $dir/serial\n"
                    "new_certs_dir = $dir/issued\ncertificate = %s\nprivate_key = %s\n"
                    "default_md = sha256\npolicy = anything\nunique_subject = no\n"
                    "copy_extensions = none\n"
                    "[anything]\ncommonName = supplied\n"
                    % (self.dir, self.cert_file, self.key_file))

    def server(self, name="server", hosts=("127.0.0.1", "localhost"), expired=False):
        """(certificate file, key file) of a server certificate this CA
        signs, for the given host names / IP addresses. expired: valid from
        2020-01-01 to 2020-01-02 only."""
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(self.dir, name + ".pem")
        ext = os.path.join(self.dir, name + ".ext")
        alt = ",".join(("IP:" if h.replace(".", "").isdigit() else "DNS:") + h for h in hosts)
        with open(ext, "w") as f:
            f.write("basicConstraints = critical,CA:FALSE\n"
                    "keyUsage = critical,digitalSignature\n"
                    "extendedKeyUsage = serverAuth\n"
                    "subjectAltName = %s\n" % alt)
        _run(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", key, "-out", csr, "-subj", "/CN=" + hosts[0]], self.dir)
        if expired:
            period = ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"]
        else:
            period = ["-days", "30"]
        _run(["ca", "-batch", "-config", self.config, "-notext", "-in", csr, "-out", cert,
              "-extfile", ext] + period, self.dir)
        return cert, key
